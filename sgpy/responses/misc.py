"""GET LBA STATUS, REPORT TARGET PORT GROUPS, REPORT ZONES, REPORT SUPPORTED
TASK MANAGEMENT FUNCTIONS, and REQUEST SENSE parameter data."""

from __future__ import annotations

import enum
from typing import ClassVar, Optional, Tuple

import attrs

from sgpy.errors import MalformedResponse
from sgpy.responses._common import be, bits, decode_layout, descriptors, enum_or_int, length_header, read_header
from sgpy.sense import SenseData

__all__ = [
    "RequestSenseData",
    "ProvisioningStatus",
    "LbaStatusDescriptor",
    "LbaStatus",
    "AccessState",
    "TargetPortGroup",
    "TargetPortGroups",
    "ZoneType",
    "ZoneCondition",
    "Zone",
    "ReportZonesData",
    "SupportedTaskManagementFunctions",
]

#: REQUEST SENSE returns sense data (SPC-5 6.39): the same decoder serves it.
RequestSenseData = SenseData


# ---------------------------------------------------------------------------
# GET LBA STATUS (SBC-4 5.8)
# ---------------------------------------------------------------------------


class ProvisioningStatus(enum.IntEnum):
    """PROVISIONING STATUS of an LBA status descriptor (SBC-4 5.8.2, from r12 on).

    ``MAPPED_OR_UNKNOWN`` (0h) is what SBC-3 called "mapped": the extent is
    mapped *or* its state is not known, so it promises nothing.  SBC-4 split
    the two meanings into ``MAPPED`` (3h) and ``UNKNOWN`` (4h); a device may
    still answer 0h.  Reserved values (5h-Fh) are kept as plain ints.
    """

    MAPPED_OR_UNKNOWN = 0x0
    DEALLOCATED = 0x1
    ANCHORED = 0x2
    MAPPED = 0x3
    UNKNOWN = 0x4


@attrs.frozen
class LbaStatusDescriptor:
    """One LBA status descriptor (SBC-4 5.8.2): a run of blocks with one status.

    ``provisioning_status`` is a :class:`ProvisioningStatus` when the value is
    named, else the plain int.
    """

    lba: int
    number_of_blocks: int
    provisioning_status: int
    additional_status: int


@attrs.frozen
class LbaStatus:
    """GET LBA STATUS parameter data, SBC-4 table 47."""

    descriptors: Tuple[LbaStatusDescriptor, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """PARAMETER DATA LENGTH + 4, or None when the 4-byte header is incomplete."""
        return length_header(buf, 0, 4, 4)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "LbaStatus":
        """Parse the 16-byte descriptors after the 8-byte header."""
        buf, wanted = read_header(buf, 0, 4, 4, "GET LBA STATUS data")
        if wanted < 8 or (wanted - 8) % 16:
            raise MalformedResponse(f"GET LBA STATUS PARAMETER DATA LENGTH {wanted - 4} is not 4 + 16n")
        data = buf[:wanted]
        descriptors = tuple(
            LbaStatusDescriptor(
                lba=be(data, p, 8),
                number_of_blocks=be(data, p + 8, 4),
                provisioning_status=enum_or_int(ProvisioningStatus, data[p + 12] & 0x0F),
                additional_status=data[p + 13],
            )
            for p in range(8, len(data) - 15, 16)
        )
        return cls(descriptors=descriptors, truncated=len(buf) < wanted, wanted_length=wanted)


# ---------------------------------------------------------------------------
# REPORT TARGET PORT GROUPS (SPC-5 6.36)
# ---------------------------------------------------------------------------


class AccessState(enum.IntEnum):
    """ASYMMETRIC ACCESS STATE, SPC-5 table 321."""

    ACTIVE_OPTIMIZED = 0x0
    ACTIVE_NON_OPTIMIZED = 0x1
    STANDBY = 0x2
    UNAVAILABLE = 0x3
    LOGICAL_BLOCK_DEPENDENT = 0x4
    OFFLINE = 0xE
    TRANSITIONING = 0xF


@attrs.frozen
class TargetPortGroup:
    """Target port group descriptor, SPC-5 table 320, with its relative target ports."""

    pref: bool
    asymmetric_access_state: int
    supported_states: int
    target_port_group: int
    status_code: int
    vendor_specific: int
    relative_target_ports: Tuple[int, ...]

    @property
    def t_sup(self) -> bool:
        """Transitioning state supported."""
        return bool(self.supported_states & 0x80)

    @property
    def o_sup(self) -> bool:
        """Offline state supported."""
        return bool(self.supported_states & 0x40)

    @property
    def lbd_sup(self) -> bool:
        """Logical block dependent state supported."""
        return bool(self.supported_states & 0x10)

    @property
    def u_sup(self) -> bool:
        """Unavailable state supported."""
        return bool(self.supported_states & 0x08)

    @property
    def s_sup(self) -> bool:
        """Standby state supported."""
        return bool(self.supported_states & 0x04)

    @property
    def an_sup(self) -> bool:
        """Active/non-optimized state supported."""
        return bool(self.supported_states & 0x02)

    @property
    def ao_sup(self) -> bool:
        """Active/optimized state supported."""
        return bool(self.supported_states & 0x01)


def _group_size(data: bytes, pos: int) -> int:
    """A target port group descriptor's size: 8 bytes, then 4 per relative target port (byte 7)."""
    return 8 + 4 * data[pos + 7]


@attrs.frozen
class TargetPortGroups:
    """REPORT TARGET PORT GROUPS data, length-only (SPC-5 table 318) or
    extended (table 319, ``extended`` True, with the implicit transition time).

    ``extended`` is None when the answer stops before byte 4, which tells
    the formats apart; ``implicit_transition_time`` is None unless the
    extended header holds it.
    """

    groups: Tuple[TargetPortGroup, ...] = ()
    extended: Optional[bool] = False
    implicit_transition_time: Optional[int] = None
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """RETURN DATA LENGTH + 4, or None when the 4-byte header is incomplete."""
        return length_header(buf, 0, 4, 4)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "TargetPortGroups":
        """Parse each group; the format is read from byte 4 (FORMAT TYPE 001b = extended)."""
        buf, wanted = read_header(buf, 0, 4, 4, "target port groups")
        truncated = len(buf) < wanted
        data = buf[:wanted]
        # SPC-5 6.36: FORMAT TYPE (byte 4 bits 6-4) is 001b in the extended header.
        extended = (data[4] >> 4) & 0x07 == 1 if len(data) > 4 else None
        itt = data[5] if extended and len(data) > 5 else None
        first = 8 if extended else 4
        spans = descriptors(data, first, truncated, 8, _group_size, "target port group descriptor", "data length")
        groups = tuple(
            TargetPortGroup(
                pref=bool(data[pos] & 0x80),
                asymmetric_access_state=enum_or_int(AccessState, data[pos] & 0x0F),
                supported_states=data[pos + 1],
                target_port_group=be(data, pos + 2, 2),
                status_code=data[pos + 5],
                vendor_specific=data[pos + 6],
                relative_target_ports=tuple(be(data, p + 2, 2) for p in range(pos + 8, end, 4)),
            )
            for pos, end in spans
        )
        return cls(
            groups=groups,
            extended=extended,
            implicit_transition_time=itt,
            truncated=truncated,
            wanted_length=wanted,
        )


# ---------------------------------------------------------------------------
# REPORT ZONES (ZBC-2 5.4)
# ---------------------------------------------------------------------------


class ZoneType(enum.IntEnum):
    """ZONE TYPE, ZBC-2 table 7."""

    CONVENTIONAL = 0x1
    SEQUENTIAL_WRITE_REQUIRED = 0x2
    SEQUENTIAL_WRITE_PREFERRED = 0x3
    SEQUENTIAL_OR_BEFORE_REQUIRED = 0x4
    GAP = 0x5


class ZoneCondition(enum.IntEnum):
    """ZONE CONDITION, ZBC-2 table 8."""

    NOT_WRITE_POINTER = 0x0
    EMPTY = 0x1
    IMPLICITLY_OPENED = 0x2
    EXPLICITLY_OPENED = 0x3
    CLOSED = 0x4
    INACTIVE = 0x5
    READ_ONLY = 0xD
    FULL = 0xE
    OFFLINE = 0xF


@attrs.frozen
class Zone:
    """Zone descriptor, ZBC-2 table 6 (64 bytes)."""

    zone_type: int
    zone_condition: int
    non_seq: bool
    reset: bool
    zone_length: int
    zone_start_lba: int
    write_pointer_lba: int


#: What the SAME field of the REPORT ZONES header says about the zone descriptors, ZBC-2 table 5.
_SAME_MEANING = {
    0x0: "zone type and length may differ from zone to zone",
    0x1: "every zone has the type and length of the first",
    0x2: "every zone has the type of the first, and its length but for the last zone",
    0x3: "zone types may differ; every zone has the length of the first",
}


@attrs.frozen
class ReportZonesData:
    """REPORT ZONES parameter data, ZBC-2 table 5: a 64-byte header and 64-byte zone descriptors.

    ``wanted_length`` counts every zone that matched, which may be far more
    than one allocation length can carry; re-issue from the last zone's end
    to read them in pieces.  ``same`` and ``maximum_lba`` are None when a
    short answer cuts them.
    """

    zone_list_length: int = 0
    same: Optional[int] = bits(4, 0, 4)
    maximum_lba: Optional[int] = bits(8, 0, 64)
    zones: Tuple[Zone, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """ZONE LIST LENGTH + 64, or None when the 4-byte length is missing."""
        return length_header(buf, 0, 4, 64)

    @property
    def same_meaning(self) -> Optional[str]:
        """What ``same`` says (ZBC-2 table 5), in words; None when the field is cut off or reserved (4h-Fh)."""
        return None if self.same is None else _SAME_MEANING.get(self.same)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "ReportZonesData":
        """Parse the header and every complete zone descriptor."""
        buf, wanted = read_header(buf, 0, 4, 64, "REPORT ZONES data")
        length = wanted - 64
        if length % 64:
            raise MalformedResponse(f"ZONE LIST LENGTH {length} is not a multiple of 64")
        data = buf[:wanted]
        zones = tuple(
            Zone(
                zone_type=enum_or_int(ZoneType, data[p] & 0x0F),
                zone_condition=enum_or_int(ZoneCondition, data[p + 1] >> 4),
                non_seq=bool(data[p + 1] & 0x02),
                reset=bool(data[p + 1] & 0x01),
                zone_length=be(data, p + 8, 8),
                zone_start_lba=be(data, p + 16, 8),
                write_pointer_lba=be(data, p + 24, 8),
            )
            for p in range(64, len(data) - 63, 64)
        )
        return cls(
            **decode_layout(cls, data),
            zone_list_length=length,
            zones=zones,
            truncated=len(buf) < wanted,
            wanted_length=wanted,
        )


# ---------------------------------------------------------------------------
# REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-5 6.38)
# ---------------------------------------------------------------------------


@attrs.frozen
class SupportedTaskManagementFunctions:
    """REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS data, SPC-5 table 331
    (4 bytes) or, with REPD, table 332 (16 bytes, with timeouts in 100 ms units)."""

    LENGTH: ClassVar[int] = 4

    ats: bool = bits(0, 7, 1, flag=True)
    atss: bool = bits(0, 6, 1, flag=True)
    cacas: bool = bits(0, 5, 1, flag=True)
    ctss: bool = bits(0, 4, 1, flag=True)
    lurs: bool = bits(0, 3, 1, flag=True)
    qts: bool = bits(0, 2, 1, flag=True)
    trs: bool = bits(0, 1, 1, flag=True)
    wakes: bool = bits(0, 0, 1, flag=True)
    qaes: bool = bits(1, 2, 1, flag=True)
    qtss: bool = bits(1, 1, 1, flag=True)
    itnrs: bool = bits(1, 0, 1, flag=True)
    additional_data_length: int = bits(3)
    tmftmov: Optional[bool] = bits(4, 0, 1, flag=True)
    atts: Optional[bool] = bits(6, 7, 1, flag=True)
    atsts: Optional[bool] = bits(6, 6, 1, flag=True)
    cacats: Optional[bool] = bits(6, 5, 1, flag=True)
    ctsts: Optional[bool] = bits(6, 4, 1, flag=True)
    lurts: Optional[bool] = bits(6, 3, 1, flag=True)
    qtts: Optional[bool] = bits(6, 2, 1, flag=True)
    wakets: Optional[bool] = bits(6, 0, 1, flag=True)
    qaets: Optional[bool] = bits(7, 2, 1, flag=True)
    qtsts: Optional[bool] = bits(7, 1, 1, flag=True)
    itnrts: Optional[bool] = bits(7, 0, 1, flag=True)
    tmf_long_timeout: Optional[int] = bits(8, 0, 32)
    tmf_short_timeout: Optional[int] = bits(12, 0, 32)
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """4 + ADDITIONAL DATA LENGTH, or None when byte 3 is missing."""
        return length_header(buf, 3, 1, 4)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "SupportedTaskManagementFunctions":
        """Parse the support bits (and the timeouts of the extended form)."""
        buf, wanted = read_header(buf, 3, 1, 4, "task management functions data")
        return cls(**decode_layout(cls, buf[:wanted]), truncated=len(buf) < wanted, wanted_length=wanted)
