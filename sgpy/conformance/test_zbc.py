"""Conformance checks of zoned block devices (ZBC-2).

Skipped, as unsupported, on a device that reports no zones: REPORT ZONES
is not in REPORT SUPPORTED OPERATION CODES, or it fails with INVALID
COMMAND OPERATION CODE.
"""

from __future__ import annotations

from typing import List, Optional

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
