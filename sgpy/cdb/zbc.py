"""Zoned block commands, from ZBC-2 (Zoned Block Commands - 2).

REPORT ZONES is the ZBC IN (95h) service action 00h; the zone state
changes are ZBC OUT (94h) service actions.  Both families keep the service
action in byte 1 bits 4-0.
"""

from __future__ import annotations

from sgpy._fields import field
from sgpy.cdb.base import AllocationIn, NoData, base, command
from sgpy.cdb.spc import SA_BYTE1

__all__ = ["ReportZones", "OpenZone", "CloseZone", "FinishZone", "ResetWritePointer"]


@command
class ReportZones(AllocationIn):
    """REPORT ZONES (95h/00h, ZBC-2): zone descriptors from ``zone_start_lba`` on."""

    opcode = 0x95
    cdb_length = 16
    standard = "ZBC-2"
    _sa_spec = SA_BYTE1
    service_action = 0x00
    zone_start_lba = field(2, width=64)
    allocation_length = field(10, width=32, default=65536)
    partial = field(14, 7, 1)
    reporting_options = field(14, 5, 6)
    control = field(15)


@base
class _ZbcOut(NoData):
    """ZBC OUT (94h, ZBC-2) zone operations: one zone by ID, ``zone_count`` zones, or ALL."""

    opcode = 0x94
    cdb_length = 16
    standard = "ZBC-2"
    _sa_spec = SA_BYTE1
    zone_id = field(2, width=64)
    # bytes 10-11 reserved
    zone_count = field(12, width=16, doc="ZBC-2 (reserved in ZBC)")
    all = field(14, 0, 1, doc="apply to all zones")
    control = field(15)


@command
class CloseZone(_ZbcOut):
    """CLOSE ZONE (94h/01h, ZBC-2)."""

    service_action = 0x01


@command
class FinishZone(_ZbcOut):
    """FINISH ZONE (94h/02h, ZBC-2): move the write pointer to the zone's end."""

    service_action = 0x02
    changes_data = True


@command
class OpenZone(_ZbcOut):
    """OPEN ZONE (94h/03h, ZBC-2)."""

    service_action = 0x03


@command
class ResetWritePointer(_ZbcOut):
    """RESET WRITE POINTER (94h/04h, ZBC-2): empty the zone; its data becomes unreadable."""

    service_action = 0x04
    changes_data = True
