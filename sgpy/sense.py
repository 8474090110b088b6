"""Sense data: decode the bytes a device returns with CHECK CONDITION.

Pure: no I/O.  :func:`decode` turns fixed-format (response codes 70h/71h,
SPC-5 4.4.3) and descriptor-format (72h/73h, SPC-5 4.4.2) sense data into a
frozen :class:`SenseData`.  Short or inconsistent sense is decoded as far as
the bytes go (a field they stop before is None -- ASC and ASCQ included --
and ``truncated`` says so); only data that cannot be sense at all raises
:class:`~sgpy.errors.MalformedResponse`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import attr
import attrs

from sgpy._asc import asc_text
from sgpy.constants import SenseKey
from sgpy.errors import MalformedResponse
from sgpy.responses._common import be, length_header

__all__ = [
    "decode",
    "hex_or_dash",
    "SenseData",
    "FieldPointer",
    "ActualRetryCount",
    "ProgressIndication",
    "SegmentPointer",
    "UnitAttentionQueueOverflow",
    "RawSenseKeySpecific",
    "SenseKeySpecific",
    "InformationDescriptor",
    "CommandSpecificInformationDescriptor",
    "SenseKeySpecificDescriptor",
    "FieldReplaceableUnitDescriptor",
    "StreamCommandsDescriptor",
    "BlockCommandsDescriptor",
    "AtaStatusReturnDescriptor",
    "AnotherProgressIndicationDescriptor",
    "UserDataSegmentReferralDescriptor",
    "ReferralSegment",
    "ReferralTargetPortGroup",
    "ForwardedSenseDataDescriptor",
    "DirectAccessBlockDeviceDescriptor",
    "DeviceDesignationDescriptor",
    "MicrocodeActivationDescriptor",
    "RawDescriptor",
    "SenseDescriptor",
]


# Response codes, SPC-5 4.4.1 table 27.
_FIXED_CURRENT = 0x70
_FIXED_DEFERRED = 0x71
_DESC_CURRENT = 0x72
_DESC_DEFERRED = 0x73

# Forwarded sense data may itself hold forwarded sense data; stop somewhere.
_MAX_NESTING = 2


# ---------------------------------------------------------------------------
# Sense-key specific information (SPC-5 4.4.2.4, tables 33-37)
# ---------------------------------------------------------------------------


@attrs.frozen
class FieldPointer:
    """ILLEGAL REQUEST: which CDB or parameter-list field was wrong (SPC-5 table 34).

    ``cd`` is True when the field is in the CDB and False when it is in the
    parameter data; ``bit_pointer`` is only meaningful (and only set) when
    the BPV bit was one.
    """

    cd: bool
    field_pointer: int
    bit_pointer: Optional[int] = None

    def __str__(self) -> str:
        where = "CDB" if self.cd else "parameter data"
        text = f"field pointer: {where} byte {self.field_pointer}"
        if self.bit_pointer is not None:
            text += f" bit {self.bit_pointer}"
        return text


@attrs.frozen
class ActualRetryCount:
    """RECOVERED/MEDIUM/HARDWARE ERROR: retries the device made (SPC-5 table 35)."""

    count: int

    def __str__(self) -> str:
        return f"actual retry count: {self.count}"


@attrs.frozen
class ProgressIndication:
    """NO SENSE / NOT READY: progress of a long operation (SPC-5 table 36).

    ``progress`` is the raw numerator of a fraction whose denominator is
    65536; :attr:`percent` gives it as a percentage.
    """

    progress: int

    @property
    def fraction(self) -> float:
        """Completed fraction, 0.0 to just under 1.0."""
        return self.progress / 65536.0

    @property
    def percent(self) -> float:
        """Completed percentage, 0.0 to just under 100.0."""
        return self.progress * 100.0 / 65536.0

    def __str__(self) -> str:
        return f"progress: {self.percent:.1f}%"


@attrs.frozen
class SegmentPointer:
    """COPY ABORTED: where in the segment descriptor the copy failed (SPC-5 table 37).

    ``sd`` is True when the pointer is into the segment descriptor, False when
    it is into the parameter list.
    """

    sd: bool
    field_pointer: int
    bit_pointer: Optional[int] = None

    def __str__(self) -> str:
        where = "segment descriptor" if self.sd else "parameter list"
        text = f"segment pointer: {where} byte {self.field_pointer}"
        if self.bit_pointer is not None:
            text += f" bit {self.bit_pointer}"
        return text


@attrs.frozen
class UnitAttentionQueueOverflow:
    """UNIT ATTENTION: the unit attention condition queue overflowed (SPC-5 table 38)."""

    overflow: bool

    def __str__(self) -> str:
        return "unit attention queue overflow" if self.overflow else "no unit attention queue overflow"


@attrs.frozen
class RawSenseKeySpecific:
    """Sense-key specific bytes for a sense key that SPC-5 gives no format."""

    data: bytes

    def __str__(self) -> str:
        return f"sense key specific: {self.data.hex()}"


SenseKeySpecific = Union[
    FieldPointer,
    ActualRetryCount,
    ProgressIndication,
    SegmentPointer,
    UnitAttentionQueueOverflow,
    RawSenseKeySpecific,
]


def _sense_key_specific(key: int, sks: bytes) -> Optional[SenseKeySpecific]:
    """Decode the three sense-key specific bytes; None when SKSV is zero."""
    if len(sks) < 3 or not sks[0] & 0x80:
        return None
    value = sks[1] << 8 | sks[2]
    if key == SenseKey.ILLEGAL_REQUEST:
        bit = sks[0] & 0x07 if sks[0] & 0x08 else None
        return FieldPointer(cd=bool(sks[0] & 0x40), field_pointer=value, bit_pointer=bit)
    if key in (SenseKey.RECOVERED_ERROR, SenseKey.MEDIUM_ERROR, SenseKey.HARDWARE_ERROR):
        return ActualRetryCount(value)
    if key in (SenseKey.NO_SENSE, SenseKey.NOT_READY):
        return ProgressIndication(value)
    if key == SenseKey.COPY_ABORTED:
        bit = sks[0] & 0x07 if sks[0] & 0x08 else None
        return SegmentPointer(sd=bool(sks[0] & 0x20), field_pointer=value, bit_pointer=bit)
    if key == SenseKey.UNIT_ATTENTION:
        return UnitAttentionQueueOverflow(bool(sks[0] & 0x01))
    return RawSenseKeySpecific(bytes(sks[:3]))


# ---------------------------------------------------------------------------
# Sense data descriptors (SPC-5 4.4.2.2 onwards, table 29 lists the types)
# ---------------------------------------------------------------------------


@attrs.frozen
class InformationDescriptor:
    """Type 00h, SPC-5 4.4.2.2: the INFORMATION field (often an LBA)."""

    valid: bool
    information: int
    descriptor_type = 0x00

    def __str__(self) -> str:
        return f"information: 0x{self.information:x}"


@attrs.frozen
class CommandSpecificInformationDescriptor:
    """Type 01h, SPC-5 4.4.2.3: command-specific information."""

    information: int
    descriptor_type = 0x01

    def __str__(self) -> str:
        return f"command-specific information: 0x{self.information:x}"


@attrs.frozen
class SenseKeySpecificDescriptor:
    """Type 02h, SPC-5 4.4.2.4: sense-key specific information (None when SKSV=0)."""

    sense_key_specific: Optional[SenseKeySpecific]
    descriptor_type = 0x02

    def __str__(self) -> str:
        return str(self.sense_key_specific) if self.sense_key_specific else "sense key specific: not valid"


@attrs.frozen
class FieldReplaceableUnitDescriptor:
    """Type 03h, SPC-5 4.4.2.5: the vendor's field replaceable unit code."""

    code: int
    descriptor_type = 0x03

    def __str__(self) -> str:
        return f"field replaceable unit: 0x{self.code:02x}"


@attrs.frozen
class StreamCommandsDescriptor:
    """Type 04h, SSC-4 4.2.x: FILEMARK, EOM and ILI for stream devices."""

    filemark: bool
    eom: bool
    ili: bool
    descriptor_type = 0x04

    def __str__(self) -> str:
        return f"stream commands: filemark={int(self.filemark)} eom={int(self.eom)} ili={int(self.ili)}"


@attrs.frozen
class BlockCommandsDescriptor:
    """Type 05h, SBC-4 4.18.2: ILI for block devices (READ LONG, WRITE LONG)."""

    ili: bool
    descriptor_type = 0x05

    def __str__(self) -> str:
        return f"block commands: ili={int(self.ili)}"


@attrs.frozen
class AtaStatusReturnDescriptor:
    """Type 09h, SAT-4 12.2.2.6: the ATA registers after ATA PASS-THROUGH.

    ``lba`` and ``count`` are assembled from their split byte positions; when
    ``extend`` is False only their low bytes are meaningful.
    """

    extend: bool
    error: int
    count: int
    lba: int
    device: int
    status: int
    descriptor_type = 0x09

    def __str__(self) -> str:
        return (
            f"ATA return: status=0x{self.status:02x} error=0x{self.error:02x} "
            f"count=0x{self.count:x} lba=0x{self.lba:x} device=0x{self.device:02x}"
            f"{' extend' if self.extend else ''}"
        )


@attrs.frozen
class AnotherProgressIndicationDescriptor:
    """Type 0Ah, SPC-5 4.4.2.6: progress of an operation other than the failed one."""

    sense_key: SenseKey
    asc: int
    ascq: int
    progress: int
    descriptor_type = 0x0A

    @property
    def percent(self) -> float:
        """Completed percentage."""
        return self.progress * 100.0 / 65536.0

    def __str__(self) -> str:
        return (
            f"another progress: {self.sense_key.text} {asc_text(self.asc, self.ascq)} "
            f"({self.asc:02X}h/{self.ascq:02X}h) {self.percent:.1f}%"
        )


@attrs.frozen
class ReferralTargetPortGroup:
    """A target port group in a user data segment referral (SBC-4 table 178)."""

    asymmetric_access_state: int
    target_port_group: int


@attrs.frozen
class ReferralSegment:
    """One user data segment referral descriptor (SBC-4 table 177)."""

    first_lba: int
    last_lba: int
    target_port_groups: Tuple[ReferralTargetPortGroup, ...]


@attrs.frozen
class UserDataSegmentReferralDescriptor:
    """Type 0Bh, SPC-5 4.4.2.7: where the user data segments live (referrals)."""

    not_all_r: bool
    segments: Tuple[ReferralSegment, ...]
    descriptor_type = 0x0B

    def __str__(self) -> str:
        return f"user data segment referral: {len(self.segments)} segment(s)"


@attrs.frozen
class ForwardedSenseDataDescriptor:
    """Type 0Ch, SPC-5 4.4.2.8: sense data forwarded from a copy source or destination.

    ``sense`` is the decoded forwarded sense (None when it could not be
    decoded); ``data`` keeps its bytes.
    """

    fsdt: bool
    sense_data_source: int
    forwarded_status: int
    sense: Optional["SenseData"]
    data: bytes = attr.ib(repr=False)
    descriptor_type = 0x0C

    def __str__(self) -> str:
        inner = str(self.sense) if self.sense is not None else self.data.hex()
        return f"forwarded sense (source {self.sense_data_source}, status 0x{self.forwarded_status:02x}): {inner}"


@attrs.frozen
class DirectAccessBlockDeviceDescriptor:
    """Type 0Dh, SBC-4 4.18.3: the fixed-format fields, for block devices, in one descriptor."""

    valid: bool
    ili: bool
    sense_key_specific: Optional[SenseKeySpecific]
    fru_code: int
    information: int
    command_specific_information: int
    descriptor_type = 0x0D

    def __str__(self) -> str:
        return f"direct-access block device: information=0x{self.information:x} ili={int(self.ili)}"


@attrs.frozen
class DeviceDesignationDescriptor:
    """Type 0Eh, SPC-5 4.4.2.9: a designation descriptor naming the device."""

    designator: Any
    descriptor_type = 0x0E

    def __str__(self) -> str:
        return f"device designation: {self.designator}"


@attrs.frozen
class MicrocodeActivationDescriptor:
    """Type 0Fh, SPC-5 4.4.2.10: seconds until new microcode becomes active."""

    activation_time: int
    descriptor_type = 0x0F

    def __str__(self) -> str:
        return f"microcode activation time: {self.activation_time} s"


@attrs.frozen
class RawDescriptor:
    """A descriptor kept as bytes: OSD types (06h-08h), vendor specific (80h-FFh),
    unknown types, and any descriptor too short for its type or cut off by the
    end of the sense data (``truncated``)."""

    descriptor_type: int
    data: bytes
    truncated: bool = False

    def __str__(self) -> str:
        cut = " (truncated)" if self.truncated else ""
        return f"descriptor {self.descriptor_type:02X}h{cut}: {self.data.hex()}"


SenseDescriptor = Union[
    InformationDescriptor,
    CommandSpecificInformationDescriptor,
    SenseKeySpecificDescriptor,
    FieldReplaceableUnitDescriptor,
    StreamCommandsDescriptor,
    BlockCommandsDescriptor,
    AtaStatusReturnDescriptor,
    AnotherProgressIndicationDescriptor,
    UserDataSegmentReferralDescriptor,
    ForwardedSenseDataDescriptor,
    DirectAccessBlockDeviceDescriptor,
    DeviceDesignationDescriptor,
    MicrocodeActivationDescriptor,
    RawDescriptor,
]

# Smallest descriptor (header included) each typed decoder needs.
_MIN_SIZE = {
    0x00: 12,
    0x01: 12,
    0x02: 8,
    0x03: 4,
    0x04: 4,
    0x05: 4,
    0x09: 14,
    0x0A: 8,
    0x0B: 4,
    0x0C: 4,
    0x0D: 24,
    0x0E: 6,
    0x0F: 8,
}


def _descriptor(d: bytes, key: int, depth: int) -> SenseDescriptor:
    """Decode one complete descriptor ``d`` (type and length bytes included)."""
    dtype = d[0]
    need = _MIN_SIZE.get(dtype)
    if need is None or len(d) < need:
        return RawDescriptor(dtype, bytes(d[2:]))
    if dtype == 0x00:
        return InformationDescriptor(valid=bool(d[2] & 0x80), information=be(d, 4, 8))
    if dtype == 0x01:
        return CommandSpecificInformationDescriptor(be(d, 4, 8))
    if dtype == 0x02:
        return SenseKeySpecificDescriptor(_sense_key_specific(key, d[4:7]))
    if dtype == 0x03:
        return FieldReplaceableUnitDescriptor(d[3])
    if dtype == 0x04:
        return StreamCommandsDescriptor(bool(d[3] & 0x80), bool(d[3] & 0x40), bool(d[3] & 0x20))
    if dtype == 0x05:
        return BlockCommandsDescriptor(bool(d[3] & 0x20))
    if dtype == 0x09:
        # SAT-4 table 194: LBA and COUNT are split over alternating bytes.
        lba = d[10] << 40 | d[8] << 32 | d[6] << 24 | d[11] << 16 | d[9] << 8 | d[7]
        return AtaStatusReturnDescriptor(
            extend=bool(d[2] & 0x01),
            error=d[3],
            count=d[4] << 8 | d[5],
            lba=lba,
            device=d[12],
            status=d[13],
        )
    if dtype == 0x0A:
        return AnotherProgressIndicationDescriptor(SenseKey(d[2] & 0x0F), d[3], d[4], d[6] << 8 | d[7])
    if dtype == 0x0B:
        return _referral(d)
    if dtype == 0x0C:
        data = bytes(d[4:])
        inner: Optional[SenseData] = None
        if depth < _MAX_NESTING:
            try:
                inner = _decode(data, depth + 1)
            except MalformedResponse:
                inner = None
        return ForwardedSenseDataDescriptor(
            fsdt=bool(d[2] & 0x80),
            sense_data_source=d[2] & 0x0F,
            forwarded_status=d[3],
            sense=inner,
            data=data,
        )
    if dtype == 0x0D:
        return DirectAccessBlockDeviceDescriptor(
            valid=bool(d[2] & 0x80),
            ili=bool(d[2] & 0x20),
            sense_key_specific=_sense_key_specific(key, d[4:7]),
            fru_code=d[7],
            information=be(d, 8, 8),
            command_specific_information=be(d, 16, 8),
        )
    if dtype == 0x0E:
        # Imported here: the designator parser lives with the VPD pages and
        # is needed only for this rare descriptor.
        from sgpy.responses.designators import parse_designator

        try:
            designator, _ = parse_designator(bytes(d[2:]), 0)
        except MalformedResponse:
            return RawDescriptor(dtype, bytes(d[2:]))
        return DeviceDesignationDescriptor(designator)
    # 0x0F
    return MicrocodeActivationDescriptor(d[6] << 8 | d[7])


def _referral(d: bytes) -> SenseDescriptor:
    """User data segment referral, SPC-5 4.4.2.7 with SBC-4 tables 177-178."""
    segments = []
    pos = 4
    while pos + 20 <= len(d):
        count = d[pos + 3]
        end = pos + 20 + 4 * count
        if end > len(d):
            return RawDescriptor(d[0], bytes(d[2:]), truncated=True)
        groups = tuple(
            ReferralTargetPortGroup(d[p] & 0x0F, d[p + 2] << 8 | d[p + 3]) for p in range(pos + 20, end, 4)
        )
        segments.append(ReferralSegment(be(d, pos + 4, 8), be(d, pos + 12, 8), groups))
        pos = end
    return UserDataSegmentReferralDescriptor(bool(d[2] & 0x01), tuple(segments))


# ---------------------------------------------------------------------------
# Sense data
# ---------------------------------------------------------------------------


@attrs.frozen
class SenseData:
    """Decoded sense data, fixed or descriptor format, current or deferred.

    Fields that the format carries in several places are gathered here:
    ``information``, ``command_specific_information``, ``sense_key_specific``,
    ``fru_code`` and ``filemark``/``eom``/``ili`` come from the fixed-format
    bytes or from the matching descriptors.  ``information`` is None unless
    the device marked it VALID.  ``truncated`` is True when the bytes ended
    before the additional sense length said they would (or before the
    8-byte header); a field the bytes stop before is None (``asc`` and
    ``ascq`` included: a fixed-format sense of 12 bytes has neither).

    The same class serves the parameter data of REQUEST SENSE
    (:meth:`from_bytes`), with ``wanted_length`` and :meth:`required_length`
    like every response parser.
    """

    response_code: int
    sense_key: SenseKey
    asc: Optional[int]
    ascq: Optional[int]
    valid: bool = False
    information: Optional[int] = None
    command_specific_information: Optional[int] = None
    sense_key_specific: Optional[SenseKeySpecific] = None
    fru_code: Optional[int] = None
    filemark: bool = False
    eom: bool = False
    ili: bool = False
    sdat_ovfl: bool = False
    descriptors: Tuple[SenseDescriptor, ...] = ()
    additional_bytes: bytes = attr.ib(default=b"", repr=False)
    truncated: bool = False
    wanted_length: Optional[int] = None
    raw: bytes = attr.ib(default=b"", repr=False, eq=False)

    @property
    def deferred(self) -> bool:
        """True for a deferred error (71h/73h): it belongs to an earlier command."""
        return self.response_code in (_FIXED_DEFERRED, _DESC_DEFERRED)

    @property
    def current(self) -> bool:
        """True for a current error (70h/72h)."""
        return not self.deferred

    @property
    def descriptor_format(self) -> bool:
        """True for descriptor-format sense (72h/73h)."""
        return self.response_code in (_DESC_CURRENT, _DESC_DEFERRED)

    @property
    def description(self) -> str:
        """The T10 text of the ASC/ASCQ pair (never raises)."""
        if self.asc is None:
            return "no additional sense code (the sense data stops before it)"
        return asc_text(self.asc, 0 if self.ascq is None else self.ascq)

    @property
    def progress(self) -> Optional[float]:
        """Progress percentage from the sense-key specific bytes, if any."""
        if isinstance(self.sense_key_specific, ProgressIndication):
            return self.sense_key_specific.percent
        return None

    def descriptor(self, descriptor_type: int) -> Optional[SenseDescriptor]:
        """The first descriptor of the given type, or None."""
        for d in self.descriptors:
            if d.descriptor_type == descriptor_type:
                return d
        return None

    @classmethod
    def from_bytes(cls, buf: bytes) -> "SenseData":
        """Decode REQUEST SENSE parameter data (or any sense buffer).

        Unlike :func:`decode`, an empty or all-zero buffer is not "no sense"
        here but an impossible answer, so it raises
        :class:`~sgpy.errors.MalformedResponse`.
        """
        sense = decode(buf)
        if sense is None:
            raise MalformedResponse("sense data is empty (response code 00h)")
        return sense

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """Total length the sense data says it has (8 + ADDITIONAL SENSE LENGTH)."""
        return length_header(buf, 7, 1, 8)

    def __str__(self) -> str:
        head = "deferred error: " if self.deferred else ""
        parts = [f"{head}{self.sense_key.text} \u2014 {self.description} ({hex_or_dash(self.asc)}/"
                 f"{hex_or_dash(self.ascq)})"]
        if self.sense_key_specific is not None:
            parts.append(str(self.sense_key_specific))
        if self.information is not None:
            parts.append(f"information: 0x{self.information:x} ({self.information})")
        flags = [name for name, on in (("filemark", self.filemark), ("EOM", self.eom), ("ILI", self.ili)) if on]
        parts.extend(flags)
        if self.truncated:
            parts.append("sense data truncated")
        return ", ".join(parts)


def hex_or_dash(value: Optional[int]) -> str:
    """``0Bh`` for a byte, ``--`` for a field the sense data does not reach (ASC and ASCQ of cut sense)."""
    return "--" if value is None else f"{value:02X}h"


def decode(buf: bytes) -> Optional[SenseData]:
    """Decode sense bytes into :class:`SenseData`.

    Returns None when there is no sense: an empty buffer, or a response code
    of 00h (a sense buffer the device never wrote).  Response codes other
    than 70h-73h (including 7Fh, vendor-specific format) raise
    :class:`~sgpy.errors.MalformedResponse`; anything shorter or less
    consistent than the standard asks is decoded as far as it goes.
    """
    return _decode(bytes(buf), 0)


def _decode(buf: bytes, depth: int) -> Optional[SenseData]:
    if not buf:
        return None
    code = buf[0] & 0x7F
    if code == 0:
        return None
    if code in (_FIXED_CURRENT, _FIXED_DEFERRED):
        return _fixed(buf, code)
    if code in (_DESC_CURRENT, _DESC_DEFERRED):
        return _descriptor_format(buf, code, depth)
    if code == 0x7F:
        raise MalformedResponse("vendor-specific sense data format (response code 7Fh)")
    raise MalformedResponse(f"not sense data: response code {code:02X}h")


def _extent(buf: bytes) -> Tuple[Optional[int], int, bool]:
    """Where the sense data ends: the length it asks for (None without byte 7),
    the end of its bytes in ``buf``, and whether they stop short of that length.

    Both formats keep ADDITIONAL SENSE LENGTH in byte 7 (SPC-5 tables 28 and 55).
    """
    wanted = SenseData.required_length(buf)
    if wanted is None:
        return None, len(buf), True
    return wanted, min(len(buf), wanted), len(buf) < wanted


def _fixed(buf: bytes, code: int) -> SenseData:
    """Fixed format, SPC-5 4.4.3 table 55."""
    wanted, end, truncated = _extent(buf)
    b = buf[:end]
    flags = b[2] if end > 2 else 0
    key = SenseKey(flags & 0x0F)
    valid = bool(b[0] & 0x80)
    return SenseData(
        response_code=code,
        sense_key=key,
        asc=b[12] if end > 12 else None,
        ascq=b[13] if end > 13 else None,
        valid=valid,
        information=be(b, 3, 4) if valid and end >= 7 else None,
        command_specific_information=be(b, 8, 4) if end >= 12 else None,
        sense_key_specific=_sense_key_specific(key, b[15:18]),
        fru_code=b[14] if end > 14 else None,
        filemark=bool(flags & 0x80),
        eom=bool(flags & 0x40),
        ili=bool(flags & 0x20),
        sdat_ovfl=bool(flags & 0x10),
        additional_bytes=bytes(b[18:]),
        truncated=truncated,
        wanted_length=wanted,
        raw=buf,
    )


def _descriptor_format(buf: bytes, code: int, depth: int) -> SenseData:
    """Descriptor format, SPC-5 4.4.2 table 28."""
    wanted, end, truncated = _extent(buf)
    key = SenseKey(buf[1] & 0x0F) if end > 1 else SenseKey.NO_SENSE
    descriptors: List[SenseDescriptor] = []
    pos = 8
    while pos + 2 <= end:
        nxt = pos + 2 + buf[pos + 1]
        if nxt > end:
            descriptors.append(RawDescriptor(buf[pos], bytes(buf[pos + 2 : end]), truncated=True))
            truncated = True
            break
        descriptors.append(_descriptor(buf[pos:nxt], key, depth))
        pos = nxt
    else:
        if pos < end:  # a lone type byte with no length byte
            descriptors.append(RawDescriptor(buf[pos], b"", truncated=True))
            truncated = True

    information = command_specific = sks = fru = None
    filemark = eom = ili = False
    valid = False
    for d in descriptors:
        if isinstance(d, InformationDescriptor):
            valid = d.valid
            information = d.information if d.valid else None
        elif isinstance(d, CommandSpecificInformationDescriptor):
            command_specific = d.information
        elif isinstance(d, SenseKeySpecificDescriptor):
            sks = d.sense_key_specific
        elif isinstance(d, FieldReplaceableUnitDescriptor):
            fru = d.code
        elif isinstance(d, StreamCommandsDescriptor):
            filemark, eom, ili = d.filemark, d.eom, ili or d.ili
        elif isinstance(d, BlockCommandsDescriptor):
            ili = ili or d.ili
        elif isinstance(d, DirectAccessBlockDeviceDescriptor):
            if d.valid and information is None:
                valid, information = True, d.information
            if command_specific is None:
                command_specific = d.command_specific_information
            if sks is None:
                sks = d.sense_key_specific
            if fru is None:
                fru = d.fru_code
            ili = ili or d.ili
    return SenseData(
        response_code=code,
        sense_key=key,
        asc=buf[2] if end > 2 else None,
        ascq=buf[3] if end > 3 else None,
        valid=valid,
        information=information,
        command_specific_information=command_specific,
        sense_key_specific=sks,
        fru_code=fru,
        filemark=filemark,
        eom=eom,
        ili=ili,
        sdat_ovfl=bool(buf[4] & 0x80) if end > 4 else False,
        descriptors=tuple(descriptors),
        truncated=truncated,
        wanted_length=wanted,
        raw=buf,
    )
