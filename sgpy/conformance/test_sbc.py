"""Conformance checks of the block commands (SBC-4).

Checks that write (``data_loss``) save the blocks they overwrite and put
them back afterwards, and use the last blocks of the medium.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Dict, Iterator, Tuple

import pytest

from sgpy import command, handler
from sgpy.conformance.plugin import Dut, clause, data_loss, irreversible
from sgpy.constants import Direction, SenseKey

ILLEGAL = SenseKey.ILLEGAL_REQUEST
#: LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-4 4.5, SPC-5 table F.1)
LBA_OUT_OF_RANGE = dict(sense_key=ILLEGAL, asc=0x21, ascq=0x00)


@contextlib.contextmanager
def restored(dut: Dut, lba: int, blocks: int) -> Iterator[None]:
    """Save ``blocks`` blocks at ``lba`` and write them back afterwards, whatever happens.

    Skipped on a host-managed zoned device (see :meth:`Dut.random_writes`).
    """
    dut.random_writes("writing anywhere")
    saved = dut.channel.execute(command.Read16(lba=lba, transfer_length=blocks)).data
    try:
        yield
    finally:
        dut.channel.execute(command.Write16(lba=lba, data=saved))


def _pattern(dut: Dut, blocks: int) -> bytes:
    return os.urandom(blocks * dut.capacity[1])


# -- READ CAPACITY ---------------------------------------------------------------------------------


@clause("SBC-4 5.20", "shall", "READ CAPACITY")
def test_read_capacity_10_and_16_agree(dut: Dut) -> None:
    """READ CAPACITY(10) and (16) report the same last LBA (or FFFFFFFFh beyond 32 bits) and block length."""
    c10 = dut.channel.execute(command.ReadCapacity10()).result
    io = dut.channel.execute(command.ReadCapacity16(), verify_handler=handler.might_fail)
    dut.unsupported(io, "READ CAPACITY(16)")
    c16 = io.result
    assert c10 is not None and c16 is not None
    if c16.returned_lba is not None and c16.returned_lba >= 0xFFFFFFFF:
        assert c10.returned_lba == 0xFFFFFFFF
    else:
        assert c10.returned_lba == c16.returned_lba, f"{c10.returned_lba} != {c16.returned_lba}"
    assert c10.block_length == c16.block_length


@clause("SBC-4 5.19", "shall", "READ CAPACITY")
def test_read_capacity_block_length_is_a_power_of_two(dut: Dut) -> None:
    """The LOGICAL BLOCK LENGTH IN BYTES is the block size the device reads and writes in: 512 B or more."""
    length = dut.capacity[1]
    assert length >= 512 and length & (length - 1) == 0, f"block length {length}"


# -- PROTECTION INFORMATION ------------------------------------------------------------------------

#: The protection types each value of the Extended INQUIRY Data page's SPT field declares
#: (SPC-5 7.7.8, SPT field); 110b is not listed (reserved).
_SPT_TYPES = {0b000: {1}, 0b001: {1, 2}, 0b010: {2}, 0b011: {1, 3}, 0b100: {3}, 0b101: {2, 3}, 0b111: {1, 2, 3}}


@clause("SBC-4 4.22.2", "shall", "PROTECTION")
def test_protection_is_reported_consistently(dut: Dut) -> None:
    """READ CAPACITY(16), INQUIRY and the Extended INQUIRY Data page agree on protection information.

    A medium formatted with protection (PROT_EN one, type P_TYPE + 1, SBC-4 5.20.2) needs a logical unit
    that supports it: INQUIRY's PROTECT bit one (SPC-5 6.7.2), and, when page 86h is there, an SPT field
    that includes that type (SPC-5 7.7.8).  Without PROTECT, PROT_EN is zero.
    """
    io = dut.channel.execute(command.ReadCapacity16(), verify_handler=handler.might_fail)
    dut.unsupported(io, "READ CAPACITY(16)")
    c16 = io.result
    assert c16 is not None and c16.protection_type is not None, "READ CAPACITY(16) stops before byte 12"
    protect = bool(getattr(dut.inquiry, "protect", False))
    if not protect:
        assert c16.protection_type == 0, f"PROT_EN is one (type {c16.protection_type}) but INQUIRY PROTECT is zero"
        return
    if c16.protection_type == 0 or 0x86 not in dut.vpd_pages:
        return
    ext = dut.channel.execute(command.Inquiry(evpd=True, page_code=0x86)).result
    spt = getattr(ext, "spt", None)
    if spt is None or spt not in _SPT_TYPES:
        return  # cut short, or a reserved value: nothing to hold the type against
    assert c16.protection_type in _SPT_TYPES[spt], \
        f"formatted with type {c16.protection_type} protection, but SPT {spt:03b}b declares {sorted(_SPT_TYPES[spt])}"


# -- READ ------------------------------------------------------------------------------------------

_READS = {
    "Read6": (0x08, lambda lba, n: command.Read6(lba=lba, transfer_length=n), 0x1FFFFF),
    "Read10": (0x28, lambda lba, n: command.Read10(lba=lba, transfer_length=n), 0xFFFFFFFF),
    "Read12": (0xA8, lambda lba, n: command.Read12(lba=lba, transfer_length=n), 0xFFFFFFFF),
    "Read16": (0x88, lambda lba, n: command.Read16(lba=lba, transfer_length=n), (1 << 64) - 1),
}


@pytest.mark.parametrize("name", list(_READS))
@clause("SBC-4 5.13", "shall", "READ")
def test_read_the_first_and_the_last_block(dut: Dut, name: str) -> None:
    """READ of LBA 0 and of the last LBA transfers one block each."""
    op, make, limit = _READS[name]
    dut.require(op, name)
    blocks, size = dut.capacity
    for lba in (0, min(blocks - 1, limit)):
        io = dut.channel.execute(make(lba, 1), verify_handler=handler.might_fail)
        dut.succeeded(io, name)
        assert len(io.data) == size


@pytest.mark.parametrize("name", list(_READS))
@clause("SBC-4 4.5", "shall", "READ")
def test_read_beyond_the_last_lba_is_refused(dut: Dut, name: str) -> None:
    """A READ reaching past the capacity: ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE."""
    op, make, limit = _READS[name]
    dut.require(op, name)
    blocks, _ = dut.capacity
    if blocks > limit:
        pytest.skip(f"unsupported: {name} cannot address past LBA {limit:#x}")
    for lba, n in ((blocks, 1), (blocks - 1, 2)):
        io = dut.channel.execute(make(lba, n), verify_handler=handler.might_fail)
        dut.unsupported(io, name)
        handler.must_fail(**LBA_OUT_OF_RANGE)(io)


@clause("SBC-4 5.16", "shall", "READ")
def test_read_16_at_the_largest_lba_is_refused(dut: Dut) -> None:
    """READ(16) of LBA 2^64-1: out of range on any real medium."""
    dut.channel.execute(command.Read16(lba=(1 << 64) - 1, transfer_length=1),
                        verify_handler=handler.must_fail(**LBA_OUT_OF_RANGE))


@clause("SBC-4 5.16", "shall", "READ")
def test_read_10_of_zero_blocks_transfers_nothing(dut: Dut) -> None:
    """TRANSFER LENGTH zero: no blocks are read, and that is not an error."""
    io = dut.channel.execute(command.Read10(lba=0, transfer_length=0))
    assert io.data == b""


@clause("SBC-4 4.5", "shall", "READ")
def test_read_10_of_zero_blocks_past_the_end_is_refused(dut: Dut) -> None:
    """TRANSFER LENGTH zero still has its LBA checked: an LBA past the last one (capacity + 1) is out
    of range (libiscsi's Read10.0blocks checks the same)."""
    blocks, _ = dut.capacity
    if blocks + 1 > 0xFFFFFFFF:
        pytest.skip("unsupported: READ(10) cannot address past the medium's end")
    dut.channel.execute(command.Read10(lba=blocks + 1, transfer_length=0),
                        verify_handler=handler.must_fail(**LBA_OUT_OF_RANGE))


@clause("SBC-4 4.5", "should", "READ")
def test_read_10_of_zero_blocks_at_the_capacity_is_refused(dut: Dut) -> None:
    """The LBA equal to the capacity exceeds the last LBA; whether a zero-length transfer there is
    checked depends on reading "LBA plus transfer length exceeds the capacity" literally, hence
    "should"."""
    blocks, _ = dut.capacity
    if blocks > 0xFFFFFFFF:
        pytest.skip("unsupported: READ(10) cannot address past the medium's end")
    dut.channel.execute(command.Read10(lba=blocks, transfer_length=0),
                        verify_handler=handler.must_fail(**LBA_OUT_OF_RANGE))


# -- WRITE -----------------------------------------------------------------------------------------

_WRITES = {
    "Write10": (0x2A, lambda lba, d: command.Write10(lba=lba, data=d)),
    "Write12": (0xAA, lambda lba, d: command.Write12(lba=lba, data=d)),
    "Write16": (0x8A, lambda lba, d: command.Write16(lba=lba, data=d)),
}


@data_loss
@pytest.mark.parametrize("name", list(_WRITES))
@clause("SBC-4 5.40", "shall", "WRITE")
def test_written_blocks_read_back(dut: Dut, name: str) -> None:
    """What WRITE stores at the last blocks, READ returns."""
    op, make = _WRITES[name]
    dut.require(op, name)
    blocks, _ = dut.capacity
    lba = blocks - 4
    data = _pattern(dut, 4)
    with restored(dut, lba, 4):
        dut.channel.execute(make(lba, data))
        assert dut.channel.execute(command.Read16(lba=lba, transfer_length=4)).data == data


@data_loss
@clause("SBC-4 4.5", "shall", "WRITE")
def test_write_beyond_the_last_lba_is_refused_and_changes_nothing(dut: Dut) -> None:
    """A WRITE that would pass the end is refused as out of range, before any block is written."""
    blocks, _ = dut.capacity
    before = dut.channel.execute(command.Read16(lba=blocks - 1, transfer_length=1)).data
    dut.channel.execute(command.Write16(lba=blocks - 1, data=_pattern(dut, 2)),
                        verify_handler=handler.must_fail(**LBA_OUT_OF_RANGE))
    assert dut.channel.execute(command.Read16(lba=blocks - 1, transfer_length=1)).data == before


# -- VERIFY ----------------------------------------------------------------------------------------


@clause("SBC-4 5.33", "shall", "VERIFY")
def test_verify_16_without_bytchk_succeeds_in_range_and_fails_past_it(dut: Dut) -> None:
    """VERIFY(16), BYTCHK 0: a medium check of readable blocks succeeds; past the end is out of range."""
    dut.require(0x8F, "VERIFY(16)")
    blocks, _ = dut.capacity
    io = dut.channel.execute(command.Verify16(lba=0, verification_length=8), verify_handler=handler.might_fail)
    dut.succeeded(io, "VERIFY(16)")
    dut.channel.execute(command.Verify16(lba=blocks, verification_length=1),
                        verify_handler=handler.must_fail(**LBA_OUT_OF_RANGE))


# -- GET LBA STATUS, UNMAP, WRITE SAME -----------------------------------------------------------


@clause("SBC-4 5.8", "shall", "GET LBA STATUS")
def test_get_lba_status_describes_the_starting_lba(dut: Dut) -> None:
    """The first LBA status descriptor starts at the STARTING LOGICAL BLOCK ADDRESS."""
    dut.require(0x9E, "GET LBA STATUS", 0x12)
    io = dut.channel.execute(command.GetLbaStatus(starting_lba=0), verify_handler=handler.might_fail)
    dut.unsupported(io, "GET LBA STATUS")
    if io.error is not None and io.sense is not None and io.sense.sense_key == ILLEGAL:
        pytest.skip(f"unsupported: GET LBA STATUS refused ({io.error})")
    if io.error is not None:
        raise io.error
    assert io.result is not None
    descriptors = io.result.descriptors
    assert descriptors, "no LBA status descriptor"
    assert descriptors[0].lba == 0


def _get_lba_status_refused(dut: Dut, lbas: Tuple[int, ...]) -> None:
    """GET LBA STATUS from each of ``lbas`` (all past the capacity) ends LOGICAL BLOCK ADDRESS OUT OF RANGE."""
    dut.require(0x9E, "GET LBA STATUS", 0x12)
    for lba in lbas:
        io = dut.channel.execute(command.GetLbaStatus(starting_lba=lba), verify_handler=handler.might_fail)
        dut.unsupported(io, "GET LBA STATUS")
        if io.sense is not None and io.sense.asc == 0x24:
            pytest.skip("unsupported: GET LBA STATUS refused as an invalid field")
        try:
            handler.must_fail(**LBA_OUT_OF_RANGE)(io)
        except Exception as exc:
            described = ""
            if io.error is None and io.result is not None and io.result.descriptors:
                described = f" (its first descriptor starts at LBA {io.result.descriptors[0].lba})"
            raise AssertionError(f"STARTING LOGICAL BLOCK ADDRESS {lba:#x}: {exc}{described}") from exc


@clause("SBC-4 5.8", "shall", "GET LBA STATUS")
def test_get_lba_status_past_the_end_is_refused(dut: Dut) -> None:
    """STARTING LOGICAL BLOCK ADDRESS past the capacity (the capacity itself, and 2^63, where an LBA
    turned into a byte offset overflows 64 bits): LOGICAL BLOCK ADDRESS OUT OF RANGE."""
    _get_lba_status_refused(dut, (dut.capacity[0], 1 << 63))


@clause("SBC-4 5.8", "shall", "GET LBA STATUS")
def test_get_lba_status_at_the_largest_lba_is_refused(dut: Dut) -> None:
    """STARTING LOGICAL BLOCK ADDRESS 2^64-1, where the LBA plus one block wraps to 0: LOGICAL BLOCK
    ADDRESS OUT OF RANGE."""
    _get_lba_status_refused(dut, ((1 << 64) - 1,))


@data_loss
@clause("SBC-4 5.44", "shall", "WRITE SAME")
def test_write_same_16_repeats_the_block(dut: Dut) -> None:
    """WRITE SAME(16) writes its one block of data to every block of the range."""
    dut.require(0x93, "WRITE SAME(16)")
    blocks, size = dut.capacity
    lba = blocks - 8
    one = _pattern(dut, 1)
    with restored(dut, lba, 8):
        io = dut.channel.execute(command.WriteSame16(lba=lba, number_of_logical_blocks=8, data=one),
                                 verify_handler=handler.might_fail)
        dut.succeeded(io, "WRITE SAME(16)")
        assert dut.channel.execute(command.Read16(lba=lba, transfer_length=8)).data == one * 8


@data_loss
@clause("SBC-4 5.29", "shall", "UNMAP")
def test_unmap_past_the_end_is_refused(dut: Dut) -> None:
    """An UNMAP block descriptor reaching past the capacity: LOGICAL BLOCK ADDRESS OUT OF RANGE."""
    dut.require(0x42, "UNMAP")
    dut.require_vpd(0xB2, "Logical Block Provisioning")
    lbp = dut.channel.execute(command.Inquiry(evpd=True, page_code=0xB2, allocation_length=64)).data
    if len(lbp) < 6 or not lbp[5] & 0x80:  # SBC-4 6.6.6: LBPU
        pytest.skip("unsupported: LBPU is zero on the Logical Block Provisioning page (no UNMAP)")
    blocks, _ = dut.capacity
    desc = blocks.to_bytes(8, "big") + (1).to_bytes(4, "big") + bytes(4)
    param = (6 + len(desc)).to_bytes(2, "big") + len(desc).to_bytes(2, "big") + bytes(4) + desc
    io = dut.channel.execute(command.Unmap(data=param), verify_handler=handler.might_fail)
    dut.unsupported(io, "UNMAP")
    handler.must_fail(**LBA_OUT_OF_RANGE)(io)


# -- START STOP UNIT, PREVENT ALLOW, SANITIZE ------------------------------------------------------


@clause("SBC-4 5.25", "shall", "START STOP UNIT")
def test_start_unit_on_a_started_unit_succeeds(dut: Dut) -> None:
    """START=1 on a unit already active is not an error."""
    io = dut.channel.execute(command.StartStopUnit(start=True), verify_handler=handler.might_fail)
    dut.succeeded(io, "START STOP UNIT")


@clause("SPC-5 6.13", "shall", "PREVENT ALLOW")
def test_prevent_allow_on_a_fixed_medium(dut: Dut) -> None:
    """PREVENT ALLOW MEDIUM REMOVAL: a device with a fixed medium (RMB 0) accepts ALLOW (0)."""
    io = dut.channel.execute(command.PreventAllowMediumRemoval(prevent=0), verify_handler=handler.might_fail)
    dut.succeeded(io, "PREVENT ALLOW MEDIUM REMOVAL")


#: The SANITIZE service actions the checks use (SBC-4 5.30).
_SANITIZE = {"OVERWRITE": 0x01, "BLOCK ERASE": 0x02, "CRYPTOGRAPHIC ERASE": 0x03}
#: LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS (04h/1Bh): what commands end with while it runs.
_SANITIZE_IN_PROGRESS = (0x04, 0x1B)
#: SANITIZE COMMAND FAILED (31h/03h).
_SANITIZE_FAILED = (0x31, 0x03)
#: WRITE AFTER SANITIZE REQUIRED (11h/15h).
_WRITE_AFTER_SANITIZE_REQUIRED = (0x11, 0x15)
#: How long a sanitize operation may run (a large disk's overwrite takes hours), and how often it is polled.
_SANITIZE_LIMIT_S = 48 * 3600
_SANITIZE_POLL_S = 1.0


def _sample_lbas(dut: Dut) -> Tuple[int, ...]:
    """The blocks a SANITIZE check looks at: the first four, one in the middle, the last four."""
    blocks = dut.capacity[0]
    picked = list(range(min(4, blocks))) + [blocks // 2] + list(range(max(0, blocks - 4), blocks))
    return tuple(sorted(set(picked)))


def _may_sanitize(dut: Dut, name: str) -> None:
    """Skip the check when REPORT SUPPORTED OPERATION CODES leaves SANITIZE ``name`` out, or the device is
    host-managed zoned (reads past a write pointer are another matter, ZBC-2)."""
    sa = _SANITIZE[name]
    if dut.supports(0x48, sa) is False:
        pytest.skip(f"unsupported: SANITIZE {name} (48h/{sa:02X}h) is not in REPORT SUPPORTED OPERATION CODES")
    dut.random_writes(f"SANITIZE {name} followed by reads anywhere")


def _sanitize(dut: Dut, name: str, cmd: Any, saved: Dict[int, bytes]) -> None:
    """Start SANITIZE ``name`` (``cmd``, IMMED set) and wait for it to end (SBC-4 5.30, 4.11).

    A refused command sanitizes nothing: the blocks in ``saved`` are written back.  Where REPORT
    SUPPORTED OPERATION CODES gave no answer, a refusal as an unknown operation code or an invalid field
    (the service action) says the device lacks it, and the check is skipped; otherwise a refusal, or a
    sanitize operation that fails (SANITIZE COMMAND FAILED), fails the check."""
    sa = _SANITIZE[name]
    io = dut.channel.execute(cmd, verify_handler=handler.might_fail)
    sense = io.sense
    if io.error is not None:
        for lba, data in saved.items():  # nothing was sanitized: put the sample blocks back
            dut.channel.execute(command.Write16(lba=lba, data=data))
        if dut.supports(0x48, sa) is None and sense is not None and sense.sense_key == ILLEGAL:
            dut.unsupported(io, "SANITIZE")
            if sense.asc == 0x24:
                pytest.skip(f"unsupported: SANITIZE {name} refused as an invalid field (service action {sa:02X}h)")
        raise io.error
    deadline = time.monotonic() + _SANITIZE_LIMIT_S
    while True:
        tur = dut.channel.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        s = tur.sense
        waiting = s is not None and (s.sense_key == SenseKey.UNIT_ATTENTION or (
            s.sense_key == SenseKey.NOT_READY and (s.asc, s.ascq) == _SANITIZE_IN_PROGRESS))
        if not waiting:
            break
        assert time.monotonic() < deadline, f"SANITIZE {name} still in progress after {_SANITIZE_LIMIT_S} s"
        if s is not None and s.sense_key == SenseKey.NOT_READY:
            time.sleep(_SANITIZE_POLL_S)
    if tur.error is not None:
        if s is not None and (s.asc, s.ascq) == _SANITIZE_FAILED:
            raise AssertionError(f"SANITIZE {name} failed: {tur.error}")
        raise tur.error


def _fill_samples(dut: Dut) -> Tuple[Dict[int, bytes], Dict[int, bytes]]:
    """Write random data to each sample block; return what was written and what was there, by LBA."""
    written, saved = {}, {}
    for lba in _sample_lbas(dut):
        saved[lba] = dut.channel.execute(command.Read16(lba=lba, transfer_length=1)).data
        data = _pattern(dut, 1)
        dut.channel.execute(command.Write16(lba=lba, data=data))
        written[lba] = data
    return written, saved


@irreversible
@clause("SBC-4 5.30", "shall", "SANITIZE")
def test_sanitize_overwrite(dut: Dut) -> None:
    """SANITIZE OVERWRITE with OVERWRITE COUNT 1, INVERT 0 and a pattern one block long leaves every block
    holding the pattern: reads of the first, a middle and the last blocks return it (irreversible)."""
    _, size = dut.capacity
    if size > 0xFFFF:
        pytest.skip("unsupported: a pattern one block long does not fit INITIALIZATION PATTERN LENGTH")
    _may_sanitize(dut, "OVERWRITE")
    pattern = _pattern(dut, 1)
    written, saved = _fill_samples(dut)
    param = bytes([0x01, 0x00]) + size.to_bytes(2, "big") + pattern
    _sanitize(dut, "OVERWRITE", command.SanitizeOverwrite(immed=True, data=param), saved)
    for lba in written:
        io = dut.channel.execute(command.Read16(lba=lba, transfer_length=1), verify_handler=handler.might_fail)
        assert io.error is None, f"READ(16) of LBA {lba} after SANITIZE OVERWRITE: {io.error}"
        assert io.data == pattern, f"LBA {lba} does not hold the pattern after SANITIZE OVERWRITE" + \
            (" (it holds what was there before)" if io.data == written[lba] else "")


def _after_erase(dut: Dut, name: str, field: str, written: Dict[int, bytes]) -> None:
    """After a BLOCK ERASE or CRYPTOGRAPHIC ERASE: no sample block reads back what was written before, and
    each read ends as the Block Device Characteristics page's WABEREQ / WACEREQ field (``field``) says
    (SBC-4 6.6.2): 01b GOOD; 10b MEDIUM ERROR, not WRITE AFTER SANITIZE REQUIRED; 11b MEDIUM ERROR, WRITE
    AFTER SANITIZE REQUIRED; 00b (or no page) either, or with protection information ABORTED COMMAND."""
    code = None
    if 0xB1 in dut.vpd_pages:
        page = dut.channel.execute(command.Inquiry(evpd=True, page_code=0xB1), verify_handler=handler.might_fail)
        code = getattr(page.result, field, None) if page.error is None else None
    for lba, before in written.items():
        io = dut.channel.execute(command.Read16(lba=lba, transfer_length=1), verify_handler=handler.might_fail)
        s = io.sense
        what = f"READ(16) of LBA {lba} after SANITIZE {name}"
        if io.error is None:
            assert io.data != before, f"{what} returns the data written before it"
            assert code in (None, 0, 1), f"{what} ended GOOD, but {field.upper()} is {code:02b}b"
            continue
        assert s is not None, f"{what}: {io.error}"
        medium = s.sense_key == SenseKey.MEDIUM_ERROR
        after_sanitize = (s.asc, s.ascq) == _WRITE_AFTER_SANITIZE_REQUIRED
        if code == 1:
            raise AssertionError(f"{what}: {io.error}, but {field.upper()} is 01b (reads succeed)")
        if code == 2:
            assert medium and not after_sanitize, f"{what}: {io.error}; {field.upper()} 10b wants MEDIUM ERROR " \
                                                  "other than WRITE AFTER SANITIZE REQUIRED"
        elif code == 3:
            assert medium and after_sanitize, f"{what}: {io.error}; {field.upper()} 11b wants MEDIUM ERROR, " \
                                              "WRITE AFTER SANITIZE REQUIRED"
        else:
            assert medium or (s.sense_key == SenseKey.ABORTED_COMMAND and s.asc == 0x10), \
                f"{what}: {io.error} (MEDIUM ERROR, or a protection information check, was allowed)"


@irreversible
@clause("SBC-4 5.30", "shall", "SANITIZE")
def test_sanitize_block_erase(dut: Dut) -> None:
    """SANITIZE BLOCK ERASE: afterwards no block reads back what was written before, and reads end as the
    WABEREQ field of the Block Device Characteristics page says (irreversible)."""
    _may_sanitize(dut, "BLOCK ERASE")
    written, saved = _fill_samples(dut)
    _sanitize(dut, "BLOCK ERASE", command.SanitizeBlockErase(immed=True), saved)
    _after_erase(dut, "BLOCK ERASE", "wabereq", written)


@irreversible
@clause("SBC-4 5.30", "shall", "SANITIZE")
def test_sanitize_cryptographic_erase(dut: Dut) -> None:
    """SANITIZE CRYPTOGRAPHIC ERASE: afterwards no block reads back what was written before, and reads end
    as the WACEREQ field of the Block Device Characteristics page says (irreversible)."""
    _may_sanitize(dut, "CRYPTOGRAPHIC ERASE")
    written, saved = _fill_samples(dut)
    _sanitize(dut, "CRYPTOGRAPHIC ERASE", command.SanitizeCryptographicErase(immed=True), saved)
    _after_erase(dut, "CRYPTOGRAPHIC ERASE", "wacereq", written)


# -- COMPARE AND WRITE, WRITE AND VERIFY, SYNCHRONIZE CACHE -------------------------------------------

#: MISCOMPARE DURING VERIFY OPERATION (SBC-4 5.3, SPC-5 table F.1)
MISCOMPARE = dict(sense_key=SenseKey.MISCOMPARE, asc=0x1D, ascq=0x00)


@data_loss
@clause("SBC-4 5.3", "shall", "COMPARE AND WRITE")
def test_compare_and_write_writes_when_the_data_matches(dut: Dut) -> None:
    """When the compare data equals the medium, COMPARE AND WRITE writes the write data."""
    dut.require(0x89, "COMPARE AND WRITE")
    blocks, _ = dut.capacity
    lba = blocks - 2
    with restored(dut, lba, 1):
        old = dut.channel.execute(command.Read16(lba=lba, transfer_length=1)).data
        new = _pattern(dut, 1)
        io = dut.channel.execute(command.CompareAndWrite(lba=lba, number_of_logical_blocks=1, data=old + new),
                                 verify_handler=handler.might_fail)
        dut.succeeded(io, "COMPARE AND WRITE")
        assert dut.channel.execute(command.Read16(lba=lba, transfer_length=1)).data == new


@data_loss
@clause("SBC-4 5.3", "shall", "COMPARE AND WRITE")
def test_compare_and_write_miscompare_writes_nothing(dut: Dut) -> None:
    """When the compare data differs: MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION, and the
    medium is unchanged."""
    dut.require(0x89, "COMPARE AND WRITE")
    blocks, _ = dut.capacity
    lba = blocks - 2
    with restored(dut, lba, 1):
        old = dut.channel.execute(command.Read16(lba=lba, transfer_length=1)).data
        wrong = bytes(b ^ 0xFF for b in old)
        io = dut.channel.execute(command.CompareAndWrite(lba=lba, number_of_logical_blocks=1,
                                                         data=wrong + _pattern(dut, 1)),
                                 verify_handler=handler.might_fail)
        dut.unsupported(io, "COMPARE AND WRITE")
        handler.must_fail(**MISCOMPARE)(io)
        assert dut.channel.execute(command.Read16(lba=lba, transfer_length=1)).data == old


@data_loss
@clause("SBC-4 5.42", "shall", "WRITE AND VERIFY")
def test_write_and_verify_16_writes_what_reads_back(dut: Dut) -> None:
    """WRITE AND VERIFY(16) (BYTCHK 0) stores the data as WRITE does."""
    dut.require(0x8E, "WRITE AND VERIFY(16)")
    blocks, _ = dut.capacity
    lba = blocks - 4
    data = _pattern(dut, 2)
    with restored(dut, lba, 2):
        io = dut.channel.execute(command.WriteAndVerify16(lba=lba, data=data), verify_handler=handler.might_fail)
        dut.succeeded(io, "WRITE AND VERIFY(16)")
        assert dut.channel.execute(command.Read16(lba=lba, transfer_length=2)).data == data


# -- ORWRITE -----------------------------------------------------------------------------------------

#: INVALID COMMAND OPERATION CODE (SPC-5 table F.1: 20h/00h).
INVALID_OPCODE = dict(sense_key=ILLEGAL, asc=0x20, ascq=0x00)


@data_loss
@clause("SBC-4 5.10", "shall", "ORWRITE")
def test_orwrite_16_ors_the_data_into_the_blocks(dut: Dut) -> None:
    """ORWRITE(16) leaves each block holding the OR of what it held and the data sent (SBC-4 5.10, 4.27.4).
    A device that does not list 8Bh in REPORT SUPPORTED OPERATION CODES refuses it with INVALID COMMAND
    OPERATION CODE and changes nothing; one that lists it ORs.  Two of the last blocks are used and put
    back."""
    dut.random_writes("ORWRITE of the last blocks")
    listed = dut.supports(0x8B)
    blocks, size = dut.capacity
    lba = blocks - 6
    old = _pattern(dut, 2)
    mask = _pattern(dut, 2)
    with restored(dut, lba, 2):
        dut.channel.execute(command.Write16(lba=lba, data=old))
        io = dut.channel.execute(command.Orwrite16(lba=lba, data=mask), verify_handler=handler.might_fail)
        after = dut.channel.execute(command.Read16(lba=lba, transfer_length=2)).data
        if listed is False:
            handler.must_fail(**INVALID_OPCODE)(io)
            assert after == old, "a refused ORWRITE(16) changed the blocks"
            return
        dut.unsupported(io, "ORWRITE(16)")
        if io.error is not None:
            raise io.error
        want = bytes(a | b for a, b in zip(old, mask))
        if after != want:
            bad = next(i for i in range(len(want)) if after[i] != want[i])
            got = "the data sent" if after == mask else "the old data" if after == old else "neither"
            raise AssertionError(f"byte {bad} (block {lba + bad // size}) reads {after[bad]:02X}h, expected "
                                 f"{old[bad]:02X}h OR {mask[bad]:02X}h = {want[bad]:02X}h; the blocks hold {got}")


@data_loss
@clause("SBC-4 5.10", "shall", "ORWRITE")
def test_orwrite_16_past_the_end_is_refused(dut: Dut) -> None:
    """ORWRITE(16) whose LBA and transfer length exceed the capacity (the last block and one more; LBA
    2^63): ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE, and the last block is unchanged."""
    dut.require(0x8B, "ORWRITE(16)")
    dut.random_writes("ORWRITE near the last block")
    blocks, _ = dut.capacity
    before = dut.channel.execute(command.Read16(lba=blocks - 1, transfer_length=1)).data
    for lba, n in ((blocks - 1, 2), (1 << 63, 1)):
        io = dut.channel.execute(command.Orwrite16(lba=lba, data=_pattern(dut, n)), verify_handler=handler.might_fail)
        dut.unsupported(io, "ORWRITE(16)")
        handler.must_fail(**LBA_OUT_OF_RANGE)(io)
    assert dut.channel.execute(command.Read16(lba=blocks - 1, transfer_length=1)).data == before, \
        "a refused ORWRITE(16) changed the last block"


@clause("SBC-4 5.27", "shall", "SYNCHRONIZE CACHE")
def test_synchronize_cache_in_range_and_past_it(dut: Dut) -> None:
    """SYNCHRONIZE CACHE(16) of the whole medium succeeds; a range past the capacity is out of range."""
    blocks, _ = dut.capacity
    io = dut.channel.execute(command.SynchronizeCache16(lba=0, number_of_logical_blocks=0),
                             verify_handler=handler.might_fail)
    dut.succeeded(io, "SYNCHRONIZE CACHE(16)")
    dut.channel.execute(command.SynchronizeCache16(lba=blocks, number_of_logical_blocks=1),
                        verify_handler=handler.must_fail(**LBA_OUT_OF_RANGE))


# -- Block Limits against behaviour ----------------------------------------------------------------


@clause("SBC-4 6.6.4", "shall", "VPD")
def test_block_limits_maximum_transfer_length_is_enforced(dut: Dut) -> None:
    """A READ longer than the Block Limits page's MAXIMUM TRANSFER LENGTH: INVALID FIELD IN CDB
    (SBC-4 5.16: "shall"), checked where that limit is small enough to send one block more."""
    dut.require_vpd(0xB0, "Block Limits")
    page = dut.channel.execute(command.Inquiry(evpd=True, page_code=0xB0, allocation_length=64)).data
    if len(page) < 12:
        pytest.skip("unsupported: the Block Limits page is too short to hold MAXIMUM TRANSFER LENGTH")
    limit = int.from_bytes(page[8:12], "big")
    blocks, size = dut.capacity
    if limit == 0:
        pytest.skip("unsupported: MAXIMUM TRANSFER LENGTH 0 (no limit reported)")
    if (limit + 1) * size > min(dut.channel.max_transfer, 8 << 20) or limit + 1 > blocks:
        pytest.skip(f"unsupported: MAXIMUM TRANSFER LENGTH {limit} blocks is beyond what one command here moves")
    dut.channel.execute(command.Read16(lba=0, transfer_length=limit + 1),
                        verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00))


# -- PRE-FETCH -------------------------------------------------------------------------------------

#: GOOD and CONDITION MET (SAM-6 5.3): the two statuses a PRE-FETCH that succeeds ends with.
_PRE_FETCH_STATUSES = (0x00, 0x04)


def _pre_fetch(size: int, lba: int, blocks: int) -> command.RawCommand:
    """A PRE-FETCH(10) (34h, SBC-4 5.11) or PRE-FETCH(16) (90h, SBC-4 5.12) CDB, IMMED zero, group 0.

    sgpy has no command class for PRE-FETCH, so the CDB is written out; the
    safety policy knows both operation codes as commands that only read."""
    if size == 10:
        cdb = bytes([0x34, 0]) + lba.to_bytes(4, "big") + bytes(1) + blocks.to_bytes(2, "big") + bytes(1)
    else:
        cdb = bytes([0x90, 0]) + lba.to_bytes(8, "big") + blocks.to_bytes(4, "big") + bytes(2)
    return command.RawCommand(cdb=cdb)


def _pre_fetch_in_range(dut: Dut, size: int) -> None:
    """PRE-FETCH(``size``) of the first block, the last block and the last eight blocks succeeds."""
    name = f"PRE-FETCH({size})"
    dut.require(0x34 if size == 10 else 0x90, name)
    blocks, _ = dut.capacity
    limit = 0xFFFFFFFF if size == 10 else (1 << 64) - 1
    last = min(blocks - 1, limit)
    for lba, n in ((0, 1), (last, 1), (max(0, last - 7), min(8, last + 1))):
        io = dut.channel.execute(_pre_fetch(size, lba, n), verify_handler=handler.might_fail)
        dut.succeeded(io, name)
        assert io.hdr is not None
        status = io.hdr.status & 0x7E
        assert status in _PRE_FETCH_STATUSES, f"LBA {lba}, {n} blocks: status {status:02X}h, not GOOD or CONDITION MET"


def _pre_fetch_past_the_end(dut: Dut, size: int) -> None:
    """PRE-FETCH(``size``) starting at the capacity, or running one block past it: out of range."""
    name = f"PRE-FETCH({size})"
    dut.require(0x34 if size == 10 else 0x90, name)
    blocks, _ = dut.capacity
    if size == 10 and blocks > 0xFFFFFFFF:
        pytest.skip("unsupported: PRE-FETCH(10) cannot address past the medium's end")
    for lba, n in ((blocks, 1), (blocks - 1, 2)):
        io = dut.channel.execute(_pre_fetch(size, lba, n), verify_handler=handler.might_fail)
        dut.unsupported(io, name)
        handler.must_fail(**LBA_OUT_OF_RANGE)(io)


@clause("SBC-4 5.11", "shall", "PRE-FETCH")
def test_pre_fetch_10_in_range_succeeds(dut: Dut) -> None:
    """PRE-FETCH(10) of blocks on the medium ends GOOD (not all of them fit in the cache) or
    CONDITION MET (they all will), whichever the cache allows."""
    _pre_fetch_in_range(dut, 10)


@clause("SBC-4 5.11", "shall", "PRE-FETCH")
def test_pre_fetch_10_past_the_end_is_refused(dut: Dut) -> None:
    """PRE-FETCH(10) at the capacity or reaching past it: ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE."""
    _pre_fetch_past_the_end(dut, 10)


@clause("SBC-4 5.12", "shall", "PRE-FETCH")
def test_pre_fetch_16_in_range_succeeds(dut: Dut) -> None:
    """PRE-FETCH(16) of blocks on the medium ends GOOD or CONDITION MET."""
    _pre_fetch_in_range(dut, 16)


@clause("SBC-4 5.12", "shall", "PRE-FETCH")
def test_pre_fetch_16_past_the_end_is_refused(dut: Dut) -> None:
    """PRE-FETCH(16) at the capacity or reaching past it: ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE."""
    _pre_fetch_past_the_end(dut, 16)


# -- READ DEFECT DATA ------------------------------------------------------------------------------

#: Address descriptor length of each address descriptor format (SBC-4 6.2): short block 4 bytes,
#: the others 8; vendor specific (110b) and reserved (111b) have no length the standard knows.
_DESCRIPTOR_LENGTH = {0b000: 4, 0b001: 8, 0b010: 8, 0b011: 8, 0b100: 8, 0b101: 8}
#: The format the checks ask for: long block format.
_LONG_BLOCK = 0b011
#: DEFECT LIST NOT FOUND (SBC-4 5.17, SPC-5 table F.1)
_DEFECT_LIST_NOT_FOUND = 0x1C


def _defect_data_header(dut: Dut, io: Any, name: str, *, header: int, asked_format: int, allocation: int,
                        lists: bool) -> None:
    """Judge one READ DEFECT DATA answer: the header (``header`` bytes: 4 for the 10-byte CDB, 8 for
    the 12-byte one) echoes the list format asked for, or the command ends RECOVERED ERROR /
    DEFECT LIST NOT FOUND when the device used its default format instead; the DEFECT LIST LENGTH
    accounts for the bytes that came (up to the ALLOCATION LENGTH) and is a whole number of
    descriptors.  With no list asked for (``lists`` False) only the header comes, its length zero."""
    dut.unsupported(io, name)
    sense = io.sense
    if io.error is not None and not getattr(io.error, "recovered", False):
        if lists and sense is not None and sense.sense_key == SenseKey.NO_SENSE \
                and sense.asc == _DEFECT_LIST_NOT_FOUND:
            return  # no such list: SBC-4 allows this answer instead of an empty header
        raise io.error
    data = io.data
    assert len(data) >= header, f"{len(data)} bytes: shorter than the {header}-byte header"
    length = int.from_bytes(data[2:4] if header == 4 else data[4:8], "big")
    returned = data[1] & 0x07
    if not lists:
        assert length == 0, f"no list asked for, yet DEFECT LIST LENGTH {length}"
        assert len(data) == header, f"no list asked for, yet {len(data)} bytes came (only the header, {header})"
        return
    if returned != asked_format:
        assert sense is not None and sense.sense_key == SenseKey.RECOVERED_ERROR \
            and sense.asc == _DEFECT_LIST_NOT_FOUND, \
            f"list format {returned:03b}b returned for {asked_format:03b}b without RECOVERED ERROR / " \
            f"DEFECT LIST NOT FOUND"
    assert len(data) == min(allocation, header + length), \
        f"{len(data)} bytes came; the header says {header + length} (allocation length {allocation})"
    size = _DESCRIPTOR_LENGTH.get(returned)
    if size is not None:
        assert length % size == 0, f"DEFECT LIST LENGTH {length} is not a multiple of {size} (format {returned:03b}b)"


@clause("SBC-4 5.17", "shall", "READ DEFECT DATA")
def test_read_defect_data_10_header_is_well_formed(dut: Dut) -> None:
    """READ DEFECT DATA(10): with neither list asked for, only the 4-byte header comes, DEFECT LIST
    LENGTH zero; with both, the header echoes the LIST FORMAT asked for (or the command ends RECOVERED
    ERROR / DEFECT LIST NOT FOUND) and its DEFECT LIST LENGTH matches the bytes returned."""
    dut.require(0x37, "READ DEFECT DATA(10)")
    allocation = 0xFFFF
    with dut.no_reissue():
        for lists in (False, True):
            io = dut.channel.execute(command.ReadDefectData10(req_plist=int(lists), req_glist=int(lists),
                                                              defect_list_format=_LONG_BLOCK,
                                                              allocation_length=allocation),
                                     verify_handler=handler.might_fail)
            _defect_data_header(dut, io, "READ DEFECT DATA(10)", header=4, asked_format=_LONG_BLOCK,
                                allocation=allocation, lists=lists)


@clause("SBC-4 5.18", "shall", "READ DEFECT DATA")
def test_read_defect_data_12_header_is_well_formed(dut: Dut) -> None:
    """READ DEFECT DATA(12): with neither list asked for, only the 8-byte header comes, DEFECT LIST
    LENGTH zero; with both, the header echoes the LIST FORMAT asked for (or RECOVERED ERROR / DEFECT
    LIST NOT FOUND) and its DEFECT LIST LENGTH matches the bytes returned."""
    dut.require(0xB7, "READ DEFECT DATA(12)")
    allocation = 1 << 16
    with dut.no_reissue():
        for lists in (False, True):
            io = dut.channel.execute(command.ReadDefectData12(req_plist=int(lists), req_glist=int(lists),
                                                              defect_list_format=_LONG_BLOCK,
                                                              allocation_length=allocation),
                                     verify_handler=handler.might_fail)
            _defect_data_header(dut, io, "READ DEFECT DATA(12)", header=8, asked_format=_LONG_BLOCK,
                                allocation=allocation, lists=lists)


# -- residuals -------------------------------------------------------------------------------------


@clause("SAM-6 5.3", "shall", "RESIDUALS")
def test_read_10_into_a_larger_buffer_reports_the_residual(dut: Dut) -> None:
    """READ(10) of one block into a data-in buffer of two: one block moves, the command ends GOOD, and
    the underflow (one block) is reported as the residual (``io.hdr.resid``)."""
    _, size = dut.capacity
    one = dut.channel.execute(command.Read10(lba=0, transfer_length=1)).data
    raw = command.RawCommand(cdb=command.Read10(lba=0, transfer_length=1).cdb, direction=Direction.FROM_DEVICE,
                             length=2 * size)
    io = dut.channel.execute(raw, verify_handler=handler.might_fail)
    if io.error is not None:
        raise io.error
    assert io.hdr is not None
    assert io.hdr.resid == size, f"residual {io.hdr.resid}, expected {size} (a buffer of {2 * size} for {size})"
    assert io.data == one, f"{len(io.data)} bytes, not the {size} of the block READ(10) returns"
