"""Conformance checks of zoned block devices (ZBC-2).

Skipped, as unsupported, on a device that reports no zones: REPORT ZONES
is not in REPORT SUPPORTED OPERATION CODES, or it fails with INVALID
COMMAND OPERATION CODE.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional

import pytest

from sgpy import command, handler
from sgpy.conformance.plugin import Dut, clause, data_loss
from sgpy.constants import SenseKey
from sgpy.responses.misc import Zone, ZoneCondition, ZoneType

#: Zones one REPORT ZONES asks for: 64-byte header and descriptors (ZBC-2 6.2, REPORT ZONES parameter data).
_PER_CALL = 512
#: REPORT ZONES calls a check makes at most (a device with millions of zones is checked in part).
_MAX_CALLS = 64
#: UNALIGNED WRITE COMMAND (ZBC-2 4.4.3.2; SPC-5 table F.1: 21h/04h).
UNALIGNED_WRITE = dict(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x21, ascq=0x04)


def _zones(dut: Dut, start: int = 0, calls: int = _MAX_CALLS) -> List[Zone]:
    """The zones from ``start`` on, read in pieces of :data:`_PER_CALL` (skips when there are none)."""
    dut.require(0x95, "REPORT ZONES", 0x00)
    blocks = dut.capacity[0]
    out: List[Zone] = []
    lba = start
    for _ in range(calls):
        io = dut.channel.execute(command.ReportZones(zone_start_lba=lba, allocation_length=64 + 64 * _PER_CALL,
                                                     partial=True), verify_handler=handler.might_fail)
        dut.succeeded(io, "REPORT ZONES")
        zones = io.result.zones if io.result is not None else ()
        if not zones:
            break
        out.extend(zones)
        last = zones[-1]
        lba = last.zone_start_lba + last.zone_length
        if lba >= blocks:
            break
    return out


@clause("ZBC-2 5.4", "shall", "ZBC")
def test_report_zones_tiles_the_medium(dut: Dut) -> None:
    """REPORT ZONES describes zones that start at LBA 0, follow one another without gap or overlap, and end at
    the capacity; a write pointer zone's write pointer lies within it (ZBC-2 4.4, 5.4)."""
    zones = _zones(dut)
    if not zones:
        pytest.skip("the device reports no zones")
    blocks = dut.capacity[0]
    expect = 0
    for z in zones:
        assert z.zone_start_lba == expect, f"a zone starts at {z.zone_start_lba}, the previous one ended at {expect}"
        assert z.zone_length > 0, f"the zone at {z.zone_start_lba} has length 0"
        if z.zone_type in (ZoneType.SEQUENTIAL_WRITE_REQUIRED, ZoneType.SEQUENTIAL_WRITE_PREFERRED) \
                and z.zone_condition not in (ZoneCondition.FULL, ZoneCondition.READ_ONLY, ZoneCondition.OFFLINE,
                                             ZoneCondition.INACTIVE):
            assert z.zone_start_lba <= z.write_pointer_lba <= z.zone_start_lba + z.zone_length, \
                f"the zone at {z.zone_start_lba} (length {z.zone_length}) has its write pointer at " \
                f"{z.write_pointer_lba}"
        expect = z.zone_start_lba + z.zone_length
    if len(zones) < _MAX_CALLS * _PER_CALL:
        assert expect == blocks, f"the zones end at {expect}, the capacity is {blocks} blocks"


def _empty_sequential_zone(dut: Dut) -> Optional[Zone]:
    for z in _zones(dut):
        if z.zone_type == ZoneType.SEQUENTIAL_WRITE_REQUIRED and z.zone_condition == ZoneCondition.EMPTY \
                and z.zone_length >= 4:
            return z
    return None


def _zone_at(dut: Dut, lba: int) -> Zone:
    zones = _zones(dut, start=lba, calls=1)
    assert zones and zones[0].zone_start_lba == lba, f"REPORT ZONES from {lba} does not start with that zone"
    return zones[0]


@data_loss
@clause("ZBC-2 4.4.3.2", "shall", "ZBC")
def test_writes_go_at_the_write_pointer_and_reset_empties_the_zone(dut: Dut) -> None:
    """In an empty sequential-write-required zone: a write at the write pointer succeeds and moves it; a write
    elsewhere fails with UNALIGNED WRITE COMMAND (21h/04h) and moves nothing; RESET WRITE POINTER returns the
    zone to EMPTY with its write pointer at its start (ZBC-2 4.4.3.2, 5.7).  Only an empty zone is used, and
    it is left empty."""
    zone = _empty_sequential_zone(dut)
    if zone is None:
        pytest.skip("no empty sequential-write-required zone to write in")
    start = zone.zone_start_lba
    size = dut.capacity[1]
    try:
        dut.channel.execute(command.Write16(lba=start, data=bytes(2 * size)))
        after = _zone_at(dut, start)
        assert after.write_pointer_lba == start + 2, \
            f"two blocks written at {start}: the write pointer is at {after.write_pointer_lba}"
        dut.channel.execute(command.Write16(lba=start + 3, data=bytes(size)),
                            verify_handler=handler.must_fail(**UNALIGNED_WRITE))
        assert _zone_at(dut, start).write_pointer_lba == start + 2, "a refused write moved the write pointer"
    finally:
        dut.channel.execute(command.ResetWritePointer(zone_id=start))
    reset = _zone_at(dut, start)
    assert reset.zone_condition == ZoneCondition.EMPTY and reset.write_pointer_lba == start, \
        f"after RESET WRITE POINTER: condition {reset.zone_condition}, write pointer {reset.write_pointer_lba}"


# -- the zone condition state machine (ZBC-2 4.4.3) -------------------------------------------------------

#: ILLEGAL REQUEST, INVALID FIELD IN CDB: a zone operation whose ZONE ID names no write pointer zone's start.
INVALID_FIELD = dict(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x24, ascq=0x00)
#: ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE.
LBA_OUT_OF_RANGE = dict(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x21, ascq=0x00)

#: The zone operations (ZBC OUT, 94h) by name, with their service actions.
_ZONE_OPERATIONS = {
    "OPEN ZONE": (command.OpenZone, 0x03),
    "CLOSE ZONE": (command.CloseZone, 0x01),
    "FINISH ZONE": (command.FinishZone, 0x02),
    "RESET WRITE POINTER": (command.ResetWritePointer, 0x04),
}


def _operate(dut: Dut, name: str, zone_id: int) -> None:
    """Send zone operation ``name`` to the zone starting at ``zone_id``; it must succeed."""
    cls, sa = _ZONE_OPERATIONS[name]
    dut.require(0x94, name, sa)
    io = dut.channel.execute(cls(zone_id=zone_id), verify_handler=handler.might_fail)
    dut.succeeded(io, name)


def _condition(dut: Dut, start: int, want: ZoneCondition, after: str, wp: Optional[int] = None) -> None:
    """REPORT ZONES says the zone at ``start`` is in condition ``want`` (and its write pointer at ``wp``)."""
    z = _zone_at(dut, start)
    got = ZoneCondition(z.zone_condition) if z.zone_condition in set(ZoneCondition) else z.zone_condition
    assert z.zone_condition == want, f"after {after}: the zone is {getattr(got, 'name', got)}, not {want.name}"
    if wp is not None:
        assert z.write_pointer_lba == wp, f"after {after}: the write pointer is at {z.write_pointer_lba}, not {wp}"


@contextlib.contextmanager
def _scratch_zone(dut: Dut) -> Iterator[Zone]:
    """An empty sequential-write-required zone, reset to EMPTY afterwards whatever happens (skips the
    check when the device reports no zones, or none of them is empty)."""
    zone = _empty_sequential_zone(dut)
    if zone is None:
        pytest.skip("unsupported: no empty sequential-write-required zone to work in")
    dut.require(0x94, "RESET WRITE POINTER", 0x04)
    try:
        yield zone
    finally:
        dut.channel.execute(command.ResetWritePointer(zone_id=zone.zone_start_lba), verify_handler=handler.might_fail)


@data_loss
@clause("ZBC-2 4.4.3", "shall", "ZBC")
def test_zbc_open_zone_opens_and_close_zone_of_an_unwritten_zone_empties_it(dut: Dut) -> None:
    """OPEN ZONE of an EMPTY zone makes it EXPLICITLY OPENED with its write pointer at its start; CLOSE
    ZONE of that zone, nothing written, makes it EMPTY again (not CLOSED: its write pointer is at its
    start)."""
    with _scratch_zone(dut) as zone:
        start = zone.zone_start_lba
        _operate(dut, "OPEN ZONE", start)
        _condition(dut, start, ZoneCondition.EXPLICITLY_OPENED, "OPEN ZONE of an empty zone", wp=start)
        _operate(dut, "CLOSE ZONE", start)
        _condition(dut, start, ZoneCondition.EMPTY, "CLOSE ZONE of an explicitly opened zone with nothing written",
                   wp=start)


@data_loss
@clause("ZBC-2 4.4.3", "shall", "ZBC")
def test_zbc_a_write_opens_implicitly_and_close_zone_closes(dut: Dut) -> None:
    """A write at the write pointer of an EMPTY zone makes it IMPLICITLY OPENED; CLOSE ZONE makes it CLOSED
    with the write pointer where it was; OPEN ZONE makes it EXPLICITLY OPENED, and a further write keeps it
    so."""
    with _scratch_zone(dut) as zone:
        start, size = zone.zone_start_lba, dut.capacity[1]
        dut.channel.execute(command.Write16(lba=start, data=bytes(2 * size)))
        _condition(dut, start, ZoneCondition.IMPLICITLY_OPENED, "writing two blocks into an empty zone", wp=start + 2)
        _operate(dut, "CLOSE ZONE", start)
        _condition(dut, start, ZoneCondition.CLOSED, "CLOSE ZONE of an implicitly opened zone", wp=start + 2)
        _operate(dut, "OPEN ZONE", start)
        _condition(dut, start, ZoneCondition.EXPLICITLY_OPENED, "OPEN ZONE of a closed zone", wp=start + 2)
        dut.channel.execute(command.Write16(lba=start + 2, data=bytes(size)))
        _condition(dut, start, ZoneCondition.EXPLICITLY_OPENED, "a write into an explicitly opened zone",
                   wp=start + 3)


@data_loss
@clause("ZBC-2 4.4.3", "shall", "ZBC")
def test_zbc_finish_zone_fills_and_reset_write_pointer_empties(dut: Dut) -> None:
    """FINISH ZONE makes an EMPTY zone FULL, and an IMPLICITLY OPENED one too; a write into a FULL zone is
    refused (ILLEGAL REQUEST); RESET WRITE POINTER makes a FULL zone EMPTY with its write pointer at its
    start."""
    with _scratch_zone(dut) as zone:
        start, size = zone.zone_start_lba, dut.capacity[1]
        _operate(dut, "FINISH ZONE", start)
        _condition(dut, start, ZoneCondition.FULL, "FINISH ZONE of an empty zone")
        _operate(dut, "RESET WRITE POINTER", start)
        _condition(dut, start, ZoneCondition.EMPTY, "RESET WRITE POINTER of a full zone", wp=start)
        dut.channel.execute(command.Write16(lba=start, data=bytes(size)))
        _operate(dut, "FINISH ZONE", start)
        _condition(dut, start, ZoneCondition.FULL, "FINISH ZONE of an implicitly opened zone")
        dut.channel.execute(command.Write16(lba=start + 1, data=bytes(size)),
                            verify_handler=handler.must_fail(sense_key=SenseKey.ILLEGAL_REQUEST))
        _operate(dut, "RESET WRITE POINTER", start)
        _condition(dut, start, ZoneCondition.EMPTY, "RESET WRITE POINTER of a full zone", wp=start)


@data_loss
@clause("ZBC-2 4.4.3", "shall", "ZBC")
def test_zbc_zone_operations_on_a_conventional_zone_are_refused(dut: Dut) -> None:
    """OPEN ZONE, CLOSE ZONE, FINISH ZONE and RESET WRITE POINTER whose ZONE ID is the start of a
    conventional zone (no write pointer, so no condition to change): ILLEGAL REQUEST, INVALID FIELD IN
    CDB."""
    conventional = next((z for z in _zones(dut) if z.zone_type == ZoneType.CONVENTIONAL), None)
    if conventional is None:
        pytest.skip("unsupported: the device reports no conventional zone")
    for name, (cls, sa) in _ZONE_OPERATIONS.items():
        dut.require(0x94, name, sa)
        io = dut.channel.execute(cls(zone_id=conventional.zone_start_lba), verify_handler=handler.might_fail)
        dut.unsupported(io, name)
        try:
            handler.must_fail(**INVALID_FIELD)(io)
        except Exception as exc:
            raise AssertionError(f"{name} of the conventional zone at {conventional.zone_start_lba}: {exc}") from exc


@data_loss
@clause("ZBC-2 4.4.3", "shall", "ZBC")
def test_zbc_zone_id_inside_a_zone_or_past_the_capacity_is_refused(dut: Dut) -> None:
    """A zone operation whose ZONE ID is not the start of a zone ends ILLEGAL REQUEST, INVALID FIELD IN
    CDB; one whose ZONE ID is past the capacity ends ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE;
    the zone used stays EMPTY."""
    with _scratch_zone(dut) as zone:
        start, blocks = zone.zone_start_lba, dut.capacity[0]
        for name in ("OPEN ZONE", "FINISH ZONE"):
            cls, sa = _ZONE_OPERATIONS[name]
            dut.require(0x94, name, sa)
            for zone_id, want, what in ((start + 1, INVALID_FIELD, "inside a zone"),
                                        (blocks, LBA_OUT_OF_RANGE, "at the capacity")):
                io = dut.channel.execute(cls(zone_id=zone_id), verify_handler=handler.might_fail)
                dut.unsupported(io, name)
                try:
                    handler.must_fail(**want)(io)
                except Exception as exc:
                    raise AssertionError(f"{name} with ZONE ID {zone_id} ({what}): {exc}") from exc
        _condition(dut, start, ZoneCondition.EMPTY, "the refused zone operations", wp=start)
