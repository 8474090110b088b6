"""READ CAPACITY(10)/(16) and REPORT LUNS, from byte strings laid out per SBC-4/SPC-5/SAM-5."""

from __future__ import annotations

import pytest

from sgpy.errors import MalformedResponse
from sgpy.responses import AddressMethod, Lun, ReadCapacity10Data, ReadCapacity16Data, ReportLunsData


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(
    ("buf", "lba", "length", "blocks", "needs16", "truncated"),
    [
        (h("0003ffff 00000200"), 0x3FFFF, 512, 0x40000, False, False),
        (h("ffffffff 00001000"), 0xFFFFFFFF, 4096, 0x100000000, True, False),
        (h("0003ffff 00000200 ffff"), 0x3FFFF, 512, 0x40000, False, False),
        (h("0003ffff"), 0x3FFFF, None, 0x40000, False, True),
    ],
)
def test_read_capacity_10(buf, lba, length, blocks, needs16, truncated) -> None:
    d = ReadCapacity10Data.from_bytes(buf)
    assert (d.returned_lba, d.block_length, d.number_of_blocks) == (lba, length, blocks)
    assert d.needs_read_capacity_16 is needs16
    assert d.truncated is truncated and d.wanted_length == 8
    assert ReadCapacity10Data.required_length(b"") == 8


def test_read_capacity_16() -> None:
    # 2^33 blocks of 512 bytes, PROT_EN with P_TYPE 1 (type 2), 8 logical per
    # physical block, LBPME + LBPRZ, lowest aligned LBA 7.
    buf = h("00000001ffffffff 00000200 03 13 c007") + bytes(16)
    d = ReadCapacity16Data.from_bytes(buf)
    assert d.returned_lba == 0x1FFFFFFFF and d.number_of_blocks == 1 << 33
    assert d.block_length == 512 and d.capacity_bytes == 512 << 33
    assert (d.p_type, d.prot_en, d.protection_type) == (1, True, 2)
    assert (d.p_i_exponent, d.lbppbe, d.physical_block_length) == (1, 3, 4096)
    assert (d.lbpme, d.lbprz, d.lowest_aligned_lba) == (True, True, 7)
    assert not d.truncated and d.wanted_length == 32


def test_read_capacity_16_truncated_and_rc_basis() -> None:
    d = ReadCapacity16Data.from_bytes(h("0000000000000fff 00000200 10"))
    assert d.truncated and d.rc_basis == 1 and d.lbpme is None and d.lowest_aligned_lba is None


# A number cut by a short answer has no value: the bytes present are not the
# high part of it (00 01 FF is not 01FF00h).


def test_read_capacity_10_cut_lba_is_none() -> None:
    d = ReadCapacity10Data.from_bytes(h("0001ff"))
    assert d.truncated and d.returned_lba is None and d.block_length is None
    assert d.number_of_blocks is None and d.capacity_bytes is None and d.needs_read_capacity_16 is None


def test_read_capacity_10_cut_block_length_is_none() -> None:
    d = ReadCapacity10Data.from_bytes(h("0003ffff 0002"))
    assert d.returned_lba == 0x3FFFF and d.block_length is None and d.capacity_bytes is None


@pytest.mark.parametrize("size", range(1, 32))
def test_read_capacity_16_cut_fields_are_none(size: int) -> None:
    full = h("00000001ffffffff 00000200 03 13 c007") + bytes(range(1, 17))
    whole = ReadCapacity16Data.from_bytes(full)
    d = ReadCapacity16Data.from_bytes(full[:size])
    assert d.returned_lba == (whole.returned_lba if size >= 8 else None)
    assert d.block_length == (512 if size >= 12 else None)
    assert d.lowest_aligned_lba == (7 if size >= 16 else None)
    assert d.physical_block_length == (4096 if size >= 14 else None)
    assert d.protection_type == (2 if size >= 13 else None)


@pytest.mark.parametrize("cls", [ReadCapacity10Data, ReadCapacity16Data])
def test_read_capacity_empty(cls) -> None:
    with pytest.raises(MalformedResponse):
        cls.from_bytes(b"")


def luns(*items: str) -> bytes:
    body = b"".join(h(i) for i in items)
    return len(body).to_bytes(4, "big") + bytes(4) + body


@pytest.mark.parametrize(
    ("raw", "linux", "levels"),
    [
        ("0000000000000000", 0, [(AddressMethod.PERIPHERAL, dict(bus=0, target_or_lun=0))]),
        ("0005000000000000", 5, [(AddressMethod.PERIPHERAL, dict(bus=0, target_or_lun=5))]),
        ("4105000000000000", 0x4105, [(AddressMethod.FLAT, dict(lun=0x105))]),
        ("8a43000000000000", 0x8A43, [(AddressMethod.LOGICAL_UNIT, dict(target=0x0A, bus=2, lun=3))]),
        # well-known LU (REPORT LUNS W-LUN C101h)
        ("c101000000000000", 0xC101, [(AddressMethod.EXTENDED, dict(extended_method=1, length=0,
                                                                   extended_address=1))]),
        # extended flat space, 4-byte form
        ("d2123456 00000000", 0x3456D212, [(AddressMethod.EXTENDED, dict(extended_method=2, length=1,
                                                                       extended_address=0x123456))]),
        # two levels: peripheral bus 1 target 2, then LUN 3
        ("0102 0003 00000000", 0x00030102, [(AddressMethod.PERIPHERAL, dict(bus=1, target_or_lun=2)),
                                            (AddressMethod.PERIPHERAL, dict(bus=0, target_or_lun=3))]),
    ],
)
def test_lun_decoding(raw: str, linux: int, levels) -> None:
    lun = Lun.from_bytes(h(raw))
    assert lun.linux == linux
    assert len(lun.levels) == len(levels)
    for level, (method, fields) in zip(lun.levels, levels):
        assert level.method is method
        for name, value in fields.items():
            assert getattr(level, name) == value, name
    assert str(lun).startswith(str(linux))


def test_well_known() -> None:
    assert Lun.from_bytes(h("c101000000000000")).levels[0].well_known
    assert not Lun.from_bytes(h("0001000000000000")).levels[0].well_known


def test_report_luns() -> None:
    d = ReportLunsData.from_bytes(luns("0000000000000000", "0001000000000000", "4105000000000000"))
    assert d.linux_luns == (0, 1, 0x4105)
    assert d.lun_list_length == 24 and d.wanted_length == 32 and not d.truncated


def test_report_luns_truncated() -> None:
    buf = luns(*["00%02x000000000000" % i for i in range(4)])
    d = ReportLunsData.from_bytes(buf[:20])
    assert d.truncated and d.wanted_length == 40 and d.linux_luns == (0,)
    assert ReportLunsData.required_length(buf[:4]) == 40
    assert ReportLunsData.required_length(buf[:3]) is None


@pytest.mark.parametrize("buf", [h("000000"), h("00000007 00000000")])
def test_report_luns_malformed(buf: bytes) -> None:
    with pytest.raises(MalformedResponse):
        ReportLunsData.from_bytes(buf)


def test_lun_wrong_size() -> None:
    with pytest.raises(MalformedResponse):
        Lun.from_bytes(b"\0" * 7)


def test_lun_extended_level_past_the_lun_has_no_address() -> None:
    # SAM-5 table 20: LENGTH 11b is an 8-byte level; at byte 6 only 2 bytes remain.
    lun = Lun.from_bytes(h("0000 0000 0000 f001"))
    last = lun.levels[-1]
    assert last.extended_method == 0 and last.length == 3
    assert last.extended_address is None and last.raw == h("f001")
