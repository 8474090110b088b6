"""Transfer description, data payloads, handler chains and the data-safety classification."""

from __future__ import annotations

import array
from typing import Any, Optional

import attr
import pytest

from sgpy import command as c
from sgpy.constants import Direction
from sgpy.errors import EncodeError

NONE, IN, OUT = Direction.NONE, Direction.FROM_DEVICE, Direction.TO_DEVICE

# (command, block size or None, direction, bytes moved, needs_block_size)
TRANSFERS = [
    (c.TestUnitReady(), None, NONE, 0, False),
    (c.Inquiry(allocation_length=36), None, IN, 36, False),
    (c.RequestSense(), None, IN, 252, False),
    (c.ReportLuns(allocation_length=16), None, IN, 16, False),
    (c.ReadCapacity10(), None, IN, 8, False),
    (c.ReadCapacity16(), None, IN, 32, False),
    (c.Read10(lba=0, transfer_length=8), 512, IN, 4096, True),
    (c.Read16(lba=0, transfer_length=2), 4096, IN, 8192, True),
    (c.Read6(lba=0, transfer_length=0), 512, IN, 256 * 512, True),  # 0 means 256 blocks (SBC-4)
    (c.Read6(lba=0, transfer_length=1), 512, IN, 512, True),
    (c.Write10(lba=0, transfer_length=0), 512, OUT, 0, True),
    (c.Write6(lba=0, transfer_length=0), 512, OUT, 256 * 512, True),
    (c.Write6(lba=0, data=bytes(1024)), 512, OUT, 1024, True),  # not yet resolved: len(data)
    (c.Write32(lba=0, transfer_length=3), 520, OUT, 1560, True),
    (c.WriteAndVerify16(lba=0, transfer_length=2), 512, OUT, 1024, True),
    (c.Verify10(lba=0, verification_length=8), None, NONE, 0, False),
    (c.Verify10(lba=0, verification_length=8, bytchk=1), 512, OUT, 4096, True),
    (c.Verify16(lba=0, verification_length=8, bytchk=3), 512, OUT, 512, True),
    (c.WriteSame10(lba=0, number_of_logical_blocks=100), 4096, OUT, 4096, True),
    (c.WriteSame16(lba=0, number_of_logical_blocks=100, ndob=True), None, NONE, 0, False),
    (c.CompareAndWrite(lba=0, number_of_logical_blocks=2), 512, OUT, 2048, True),
    (c.Orwrite16(lba=0, transfer_length=3), 4096, OUT, 3 * 4096, True),
    (c.ModeSelect6(data=bytes(12)), None, OUT, 12, False),
    (c.ModeSelect10(), None, OUT, 0, False),
    (c.PersistentReserveOutRegister(data=bytes(24)), None, OUT, 24, False),
    (c.Unmap(data=bytes(24)), None, OUT, 24, False),
    (c.WriteBuffer(mode=5, data=bytes(4096)), None, OUT, 4096, False),
    (c.SecurityProtocolIn(allocation_length=2, inc_512=True), None, IN, 1024, False),
    (c.SecurityProtocolOut(data=bytes(100)), None, OUT, 100, False),
    (c.FormatUnit(), None, NONE, 0, False),
    (c.FormatUnit(fmtdata=True, data=bytes(8)), None, OUT, 8, False),
    (c.ReassignBlocks(data=bytes(12)), None, OUT, 12, False),
    (c.SanitizeOverwrite(data=bytes(8)), None, OUT, 8, False),
    (c.SanitizeBlockErase(), None, NONE, 0, False),
    (c.ReportZones(allocation_length=64), None, IN, 64, False),
    (c.ResetWritePointer(all=True), None, NONE, 0, False),
    (c.AtaPassThrough16(protocol=3), None, NONE, 0, False),
    (c.AtaPassThrough16(protocol=4, t_dir=True, byt_blok=True, t_length=2, count=1), None, IN, 512, False),
    (c.AtaPassThrough16(protocol=4, t_dir=True, byt_blok=True, t_length=2, count=0x101), None, IN, 512, False),
    (
        c.AtaPassThrough16(protocol=4, extend=True, t_dir=True, byt_blok=True, t_length=2, count=0x101),
        None,
        IN,
        0x101 * 512,
        False,
    ),
    (c.AtaPassThrough16(protocol=5, t_dir=False, t_length=1, features=100), None, OUT, 100, False),
    (c.AtaPassThrough12(protocol=4, t_dir=True, byt_blok=True, t_type=True, t_length=2, count=2), 4096, IN, 8192, True),
    (c.RawCommand(cdb=bytes(6)), None, NONE, 0, False),
    (c.RawCommand(cdb=bytes.fromhex("c0" + "00" * 9), direction=IN, length=512), None, IN, 512, False),
    (c.RawCommand(cdb=bytes.fromhex("c1" + "00" * 9), direction=OUT, data=bytes(10)), None, OUT, 10, False),
]


@pytest.mark.parametrize("cmd, block_size, direction, size, needs", TRANSFERS, ids=lambda v: getattr(v, "name", None))
def test_transfer_description(
    cmd: c.Command, block_size: Optional[int], direction: Direction, size: int, needs: bool
) -> None:
    assert cmd.direction is direction
    assert cmd.transfer_bytes(block_size) == size
    assert cmd.needs_block_size is needs


@pytest.mark.parametrize(
    "cmd",
    [
        c.Read10(lba=0, transfer_length=1),
        c.Write16(lba=0, transfer_length=1),
        c.Verify10(lba=0, verification_length=1, bytchk=1),
        c.WriteSame10(lba=0, number_of_logical_blocks=1),
        c.CompareAndWrite(lba=0, number_of_logical_blocks=1),
    ],
)
def test_block_commands_need_the_block_size(cmd: c.Command) -> None:
    with pytest.raises(EncodeError, match=f"^{cmd.name}: .*block size"):
        cmd.transfer_bytes()


def test_for_block_size_resolves_transfer_length_from_data() -> None:
    cmd = c.Write10(lba=0, data=bytes(4096))
    with pytest.raises(EncodeError, match="for_block_size"):
        _ = cmd.cdb
    resolved = cmd.for_block_size(512)
    assert type(resolved) is c.Write10
    assert resolved.transfer_length == 8
    assert resolved.data is cmd.data
    assert resolved.cdb == bytes.fromhex("2a 00 00 00 00 00 00 00 08 00")
    assert resolved.for_block_size(512) is resolved


def test_for_block_size_returns_self_when_nothing_to_resolve() -> None:
    for cmd in (c.Read10(lba=0, transfer_length=1), c.Inquiry(), c.Write10(lba=0, transfer_length=1)):
        assert cmd.for_block_size(512) is cmd


@pytest.mark.parametrize(
    "cmd, block_size, message",
    [
        (c.Write10(lba=0, data=bytes(513)), 512, "not a multiple of the block size 512"),
        (c.Write10(lba=0, transfer_length=2, data=bytes(512)), 512, "1 blocks of 512 bytes but transfer_length says 2"),
        (c.Write6(lba=0, data=bytes(257 * 512)), 512, "at most 256 blocks"),
        (c.Write6(lba=0, data=b""), 512, "cannot write 0 blocks"),
        (c.Write10(lba=0, data=bytes(512)), 0, "positive int"),
        (c.Write10(lba=0), 512, "give transfer_length or data"),
        (c.CompareAndWrite(lba=0, data=bytes(512)), 512, "2 x the block size"),
        (c.WriteSame16(lba=0, number_of_logical_blocks=1, data=bytes(512)), 4096, "one logical block"),
        (c.Verify10(lba=0, verification_length=2, bytchk=1, data=bytes(512)), 512, "need 1024"),
        (c.AtaPassThrough16(protocol=5, t_length=1, features=100, data=bytes(99)), 512, "describe 100 bytes"),
    ],
)
def test_for_block_size_errors(cmd: c.Command, block_size: int, message: str) -> None:
    with pytest.raises(EncodeError, match=message) as info:
        cmd.for_block_size(block_size)
    assert str(info.value).startswith(cmd.name)


def test_write6_with_256_blocks_and_write_same_with_one() -> None:
    assert c.Write6(lba=0, data=bytes(256 * 512)).for_block_size(512).transfer_length == 0
    same = c.WriteSame16(lba=0, number_of_logical_blocks=9, data=bytes(4096))
    assert same.for_block_size(4096) is same


@pytest.mark.parametrize(
    "data",
    [b"abc", bytearray(b"abc"), memoryview(b"abc"), array.array("B", b"abc")],
    ids=["bytes", "bytearray", "memoryview", "array"],
)
def test_data_takes_any_bytes_like_object_as_is(data: Any) -> None:
    cmd = c.ModeSelect10(data=data)
    assert cmd.data is data
    assert cmd.parameter_list_length == 3


def test_multibyte_memoryview_counts_bytes() -> None:
    data = memoryview(array.array("I", [0, 0]))
    assert c.ModeSelect10(data=data).parameter_list_length == 8


@pytest.mark.parametrize(
    "make",
    [
        lambda: c.Write6(lba=0, data="a" * 512),
        lambda: c.ModeSelect6(data="abc"),
        lambda: c.RawCommand(cdb=bytes(6), direction=OUT, data="x"),
        lambda: c.RawCommand(cdb="120000006000"),
    ],
)
def test_str_payloads_are_refused(make: Any) -> None:
    with pytest.raises(TypeError, match="pass bytes"):
        make()


def test_non_buffer_payload_is_refused() -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        c.Unmap(data=[1, 2, 3])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: c.ModeSelect6(parameter_list_length=4, data=bytes(5)), "parameter_list_length=4 disagrees with len"),
        (lambda: c.Verify10(lba=0, verification_length=1, data=bytes(512)), "bytchk 1 or 3"),
        (lambda: c.WriteSame16(lba=0, number_of_logical_blocks=1, ndob=True, data=bytes(512)), "ndob"),
        (lambda: c.FormatUnit(data=bytes(4)), "fmtdata=True"),
        (lambda: c.SecurityProtocolOut(inc_512=True, data=bytes(100)), "multiple of 512"),
        (lambda: c.AtaPassThrough16(t_length=2, t_dir=True, data=bytes(1)), "t_dir=False"),
        (lambda: c.RawCommand(cdb=bytes(6), direction=IN, data=b"x"), "TO_DEVICE"),
        (lambda: c.RawCommand(cdb=bytes(6), direction=OUT, length=3, data=b"x"), "disagrees"),
        (lambda: c.RawCommand(cdb=b""), "1..260 bytes"),
        (lambda: c.RawCommand(cdb=bytes(6), length=-1), "length"),
    ],
)
def test_inconsistent_payloads_are_encode_errors(make: Any, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        make()


def test_payload_sized_commands_need_their_data() -> None:
    with pytest.raises(EncodeError, match="no data"):
        c.ReassignBlocks().transfer_bytes()
    with pytest.raises(EncodeError, match="fmtdata"):
        c.FormatUnit(fmtdata=True).transfer_bytes()


# -- handler chains ------------------------------------------------------------------------


def test_add_handler_appends_in_order_and_returns_the_command() -> None:
    cmd = c.Reserve6()
    first, second = (lambda io: None), (lambda io: None)
    assert cmd.add_handler(first) is cmd
    cmd.add_handler(second)
    assert cmd.handlers == [first, second]


def test_handlers_are_not_part_of_the_value() -> None:
    plain = c.Release6()
    chained = c.Release6(verify_handler=print).add_handler(print)
    assert plain == chained and hash(plain) == hash(chained)
    assert repr(plain) == repr(chained) == "Release6(control=0)"


def test_each_command_gets_its_own_chain() -> None:
    a, b = c.TestUnitReady(), c.TestUnitReady()
    a.add_handler(print)
    assert b.handlers == []


def test_derived_commands_share_the_chain_and_verify_handler() -> None:
    def verify(io: Any) -> None:
        return None

    write = c.Write10(lba=0, data=bytes(1024), verify_handler=verify)
    resolved = write.for_block_size(512)
    assert resolved.handlers is write.handlers and resolved.verify_handler is verify
    write.add_handler(print)
    assert resolved.handlers == [print]

    inquiry = c.Inquiry(evpd=True, page_code=0x83, verify_handler=verify)
    longer = inquiry.with_allocation_length(4096)
    assert longer.allocation_length == 4096 and longer.page_code == 0x83
    assert longer.handlers is inquiry.handlers and longer.verify_handler is verify
    assert attr.evolve(inquiry, page_code=0x80).handlers is inquiry.handlers


def test_handlers_keyword_takes_any_iterable() -> None:
    cmd = c.Inquiry(handlers=(print, repr))
    assert cmd.handlers == [print, repr]
    chain = [print]
    assert c.Inquiry(handlers=chain).handlers is chain


def test_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        c.TestUnitReady().add_handler(42)  # type: ignore[arg-type]


def test_with_allocation_length_checks_the_range() -> None:
    with pytest.raises(EncodeError, match="ModeSense6: field 'allocation_length'"):
        c.ModeSense6().with_allocation_length(256)


def test_every_data_in_command_with_an_allocation_length_can_be_reissued() -> None:
    for cls in c.all_commands():
        names = [spec.name for spec in cls.layout().fields]
        if "allocation_length" in names:
            assert cls.direction is IN
            assert hasattr(cls, "with_allocation_length"), cls.name


# -- safety classification --------------------------------------------------------------------

CHANGES_DATA = {
    "Write6", "Write10", "Write12", "Write16", "Write32", "WriteAndVerify10", "WriteAndVerify16",
    "WriteAndVerify32", "WriteSame10", "WriteSame16", "WriteSame32", "Unmap", "CompareAndWrite", "Orwrite16",
    "ModeSelect6", "ModeSelect10", "LogSelect", "ReassignBlocks", "FormatUnit", "SanitizeOverwrite",
    "SanitizeBlockErase", "SanitizeCryptographicErase", "SanitizeExitFailureMode", "WriteBuffer",
    "AtaPassThrough12", "AtaPassThrough16", "SecurityProtocolOut", "ResetWritePointer", "FinishZone",
    "PersistentReserveOutRegister", "PersistentReserveOutReserve", "PersistentReserveOutRelease",
    "PersistentReserveOutClear", "PersistentReserveOutPreempt", "PersistentReserveOutPreemptAndAbort",
    "PersistentReserveOutRegisterAndIgnoreExistingKey", "PersistentReserveOutRegisterAndMove",
    "PersistentReserveOutReplaceLostReservation", "Reserve6", "Release6", "Reserve10", "Release10",
}  # fmt: skip
IRREVERSIBLE = {
    "FormatUnit", "SanitizeOverwrite", "SanitizeBlockErase", "SanitizeCryptographicErase",
    "SanitizeExitFailureMode", "WriteBuffer", "AtaPassThrough12", "AtaPassThrough16", "SecurityProtocolOut",
}  # fmt: skip


@pytest.mark.parametrize("cls", c.all_commands(), ids=lambda cls: cls.name)
def test_classification(cls: type) -> None:
    assert cls.changes_data is (cls.name in CHANGES_DATA)
    assert cls.irreversible is (cls.name in IRREVERSIBLE)
    if cls.irreversible:
        assert cls.changes_data


@pytest.mark.parametrize(
    "raw, direction, changes, irreversible",
    [
        ("c0 00 00 00 00 00", NONE, True, True),  # vendor specific
        ("ff 00", IN, True, True),
        ("28 00 00 00 00 00 00 00 01 00", IN, False, False),  # READ(10) bytes
        ("2a 00 00 00 00 00 00 00 01 00", OUT, True, False),  # WRITE(10) bytes
        ("04 00 00 00 00 00", NONE, True, True),  # FORMAT UNIT bytes
        ("60 00 00 00 00 00 00 00 00 00", OUT, True, False),  # unknown data-out
        ("60 00 00 00 00 00 00 00 00 00", IN, False, False),  # unknown data-in
    ],
)
def test_raw_command_classification(raw: str, direction: Direction, changes: bool, irreversible: bool) -> None:
    cmd = c.RawCommand(cdb=bytes.fromhex(raw), direction=direction, length=0)
    assert cmd.changes_data is changes
    assert cmd.irreversible is irreversible


def test_raw_command_value() -> None:
    cmd = c.RawCommand(cdb=bytearray(b"\x12\x00\x00\x00\x24\x00"), direction=2, length=36)
    assert cmd.cdb == bytes.fromhex("120000002400") and type(cmd.cdb) is bytes
    assert cmd.direction is IN and cmd.opcode == 0x12 and cmd.name == "RawCommand"
    assert repr(cmd) == "RawCommand(cdb='120000002400', direction=FROM_DEVICE, length=36)"
    assert cmd == c.RawCommand(cdb=bytes.fromhex("120000002400"), direction=IN, length=36)
    assert cmd.for_block_size(512) is cmd and cmd.service_action is None
