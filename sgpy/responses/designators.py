"""Designation descriptors (SPC-5 7.7.6.1, table 487) as typed values.

Used by the Device Identification VPD page (83h), the provisioning group
descriptor of page B2h and the device designation sense descriptor.  Every
designator keeps its common header (association, code set, protocol) and its
raw bytes in ``data``; the typed subclasses add the decoded parts.
"""

from __future__ import annotations

import enum
import uuid
from typing import Iterable, Optional, Tuple

import attrs

from sgpy.constants import ProtocolIdentifier
from sgpy.errors import MalformedResponse
from sgpy.responses._common import be, enum_or_int

__all__ = [
    "Association",
    "CodeSet",
    "DesignatorType",
    "Designator",
    "T10VendorIdDesignator",
    "Eui64Designator",
    "NaaDesignator",
    "RelativeTargetPortDesignator",
    "TargetPortGroupDesignator",
    "LogicalUnitGroupDesignator",
    "Md5Designator",
    "ScsiNameStringDesignator",
    "UuidDesignator",
    "parse_designator",
    "lu_name",
]


class Association(enum.IntEnum):
    """What a designator names, SPC-5 table 488."""

    LOGICAL_UNIT = 0
    TARGET_PORT = 1
    TARGET_DEVICE = 2
    RESERVED = 3


class CodeSet(enum.IntEnum):
    """How the designator bytes are encoded, SPC-5 table 489 (code set)."""

    BINARY = 1
    ASCII = 2
    UTF8 = 3


class DesignatorType(enum.IntEnum):
    """Designator types, SPC-5 table 490."""

    VENDOR_SPECIFIC = 0x0
    T10_VENDOR_ID = 0x1
    EUI64 = 0x2
    NAA = 0x3
    RELATIVE_TARGET_PORT = 0x4
    TARGET_PORT_GROUP = 0x5
    LOGICAL_UNIT_GROUP = 0x6
    MD5_LOGICAL_UNIT = 0x7
    SCSI_NAME_STRING = 0x8
    PROTOCOL_SPECIFIC_PORT = 0x9
    UUID = 0xA




@attrs.frozen
class Designator:
    """A designation descriptor.  Used as is for vendor-specific (0h) and
    protocol-specific port (9h) designators and for any designator whose
    length does not fit its type; the subclasses decode the rest.

    ``protocol_identifier`` is set only when the PIV bit is one and the
    association is a target port or target device (SPC-5 7.7.6.1).
    """

    designator_type: int
    association: int
    code_set: int
    piv: bool
    protocol_identifier: Optional[int]
    data: bytes

    @property
    def type_name(self) -> str:
        """The designator type's name, e.g. ``"NAA"``."""
        t = enum_or_int(DesignatorType, self.designator_type)
        return t.name if isinstance(t, DesignatorType) else f"type {self.designator_type:X}h"

    @property
    def id_string(self) -> Optional[str]:
        """The designator as a name string, as Linux writes it in sysfs (``wwid``) and ``lsscsi -UU``
        prints it: ``naa.`` or ``eui.`` and the identifier in lower-case hex, ``t10.`` and the T10
        vendor ID designator's text, or a SCSI name string as it is (``iqn.…``, ``naa.…``, ``eui.…``).
        None for the other types, which name no logical unit on their own."""
        return None

    def __str__(self) -> str:
        if self.code_set in (CodeSet.ASCII, CodeSet.UTF8):
            text = self.data.decode("utf-8", "replace").rstrip("\0 ")
        else:
            text = "0x" + self.data.hex()
        return f"{self.type_name}: {text}"


@attrs.frozen
class T10VendorIdDesignator(Designator):
    """Type 1h, SPC-5 7.7.6.4: an 8-byte T10 vendor ID plus vendor-specific bytes."""

    vendor: str
    vendor_specific: bytes

    def __str__(self) -> str:
        tail = self.vendor_specific.decode("ascii", "replace").rstrip("\0 ")
        return f"T10 vendor ID: {self.vendor} {tail}".rstrip()

    @property
    def id_string(self) -> Optional[str]:
        """``t10.`` and the designator's bytes, printable ASCII as it is and any other byte as a
        backslash and three octal digits (the kernel's ``%pE``)."""
        return "t10." + "".join(chr(b) if 32 <= b < 127 else f"\\{b:03o}" for b in self.data)


@attrs.frozen
class Eui64Designator(Designator):
    """Type 2h, SPC-5 7.7.6.5: EUI-64 (8 bytes), EUI-64 based 12-byte (with a
    directory ID) or 16-byte (with an identifier extension first)."""

    company_id: int
    vendor_specific_extension_id: int
    identifier_extension: Optional[int] = None
    directory_id: Optional[int] = None

    def __str__(self) -> str:
        return f"EUI-64: eui.{self.data.hex()}"

    @property
    def id_string(self) -> Optional[str]:
        """``eui.`` and the 8, 12 or 16 bytes in lower-case hex."""
        return f"eui.{self.data.hex()}"


@attrs.frozen
class NaaDesignator(Designator):
    """Type 3h, SPC-5 7.7.6.6: a Network Address Authority name.

    NAA 2 (IEEE extended): ``vendor_specific_id_a`` (12 bits), ``company_id``,
    ``vendor_specific_id`` (24 bits).  NAA 3 (locally assigned):
    ``locally_assigned`` (60 bits).  NAA 5 (IEEE registered): ``company_id``,
    ``vendor_specific_id`` (36 bits).  NAA 6 (IEEE registered extended): as
    NAA 5 plus ``vendor_specific_id_extension`` (64 bits).  Other NAA values
    keep only ``naa`` and ``data``.
    """

    naa: int
    company_id: Optional[int] = None
    vendor_specific_id: Optional[int] = None
    vendor_specific_id_a: Optional[int] = None
    vendor_specific_id_extension: Optional[int] = None
    locally_assigned: Optional[int] = None

    def __str__(self) -> str:
        return f"NAA {self.naa}: naa.{self.data.hex()}"

    @property
    def id_string(self) -> Optional[str]:
        """``naa.`` and the 8 or 16 bytes in lower-case hex (the usual WWN: ``naa.5000c500…``)."""
        return f"naa.{self.data.hex()}"


@attrs.frozen
class RelativeTargetPortDesignator(Designator):
    """Type 4h, SPC-5 7.7.6.7: the relative target port identifier."""

    relative_port: int

    def __str__(self) -> str:
        return f"relative target port: {self.relative_port}"


@attrs.frozen
class TargetPortGroupDesignator(Designator):
    """Type 5h, SPC-5 7.7.6.8: the target port group."""

    target_port_group: int

    def __str__(self) -> str:
        return f"target port group: {self.target_port_group}"


@attrs.frozen
class LogicalUnitGroupDesignator(Designator):
    """Type 6h, SPC-5 7.7.6.9: the logical unit group."""

    logical_unit_group: int

    def __str__(self) -> str:
        return f"logical unit group: {self.logical_unit_group}"


@attrs.frozen
class Md5Designator(Designator):
    """Type 7h, SPC-5 7.7.6.10: an MD5 logical unit identifier (16 bytes)."""

    digest: bytes

    def __str__(self) -> str:
        return f"MD5 logical unit identifier: {self.digest.hex()}"


@attrs.frozen
class ScsiNameStringDesignator(Designator):
    """Type 8h, SPC-5 7.7.6.11: a UTF-8 SCSI name string (e.g. an iSCSI name)."""

    name: str

    def __str__(self) -> str:
        return f"SCSI name string: {self.name}"

    @property
    def id_string(self) -> Optional[str]:
        """The name itself (it carries its own prefix: ``iqn.``, ``eui.``, ``naa.``)."""
        return self.name


@attrs.frozen
class UuidDesignator(Designator):
    """Type Ah, SPC-5 7.7.6.13: a UUID (type 1 = locally assigned RFC 4122 UUID)."""

    uuid_type: int
    uuid: uuid.UUID

    def __str__(self) -> str:
        return f"UUID: {self.uuid}"


def _typed(dtype: int, common: dict, d: bytes) -> Designator:
    """Build the typed designator for ``d``; fall back to :class:`Designator`."""
    n = len(d)
    if dtype == DesignatorType.T10_VENDOR_ID and n >= 8:
        vendor = d[:8].decode("ascii", "replace").rstrip(" \0")
        return T10VendorIdDesignator(**common, vendor=vendor, vendor_specific=d[8:])
    if dtype == DesignatorType.EUI64:
        if n == 8:
            return Eui64Designator(**common, company_id=be(d, 0, 3), vendor_specific_extension_id=be(d, 3, 5))
        if n == 12:
            return Eui64Designator(
                **common, company_id=be(d, 0, 3), vendor_specific_extension_id=be(d, 3, 5), directory_id=be(d, 8, 4)
            )
        if n == 16:
            return Eui64Designator(
                **common,
                identifier_extension=be(d, 0, 8),
                company_id=be(d, 8, 3),
                vendor_specific_extension_id=be(d, 11, 5),
            )
        return Designator(**common)
    if dtype == DesignatorType.NAA and n >= 1:
        naa = d[0] >> 4
        if naa == 2 and n == 8:
            return NaaDesignator(
                **common,
                naa=naa,
                vendor_specific_id_a=be(d, 0, 2) & 0x0FFF,
                company_id=be(d, 2, 3),
                vendor_specific_id=be(d, 5, 3),
            )
        if naa == 3 and n == 8:
            return NaaDesignator(**common, naa=naa, locally_assigned=be(d, 0, 8) & ((1 << 60) - 1))
        if naa in (5, 6) and n == (8 if naa == 5 else 16):
            head = be(d, 0, 8)
            return NaaDesignator(
                **common,
                naa=naa,
                company_id=(head >> 36) & 0xFFFFFF,
                vendor_specific_id=head & ((1 << 36) - 1),
                vendor_specific_id_extension=be(d, 8, 8) if naa == 6 else None,
            )
        return NaaDesignator(**common, naa=naa)
    if dtype == DesignatorType.RELATIVE_TARGET_PORT and n >= 4:
        return RelativeTargetPortDesignator(**common, relative_port=be(d, 2, 2))
    if dtype == DesignatorType.TARGET_PORT_GROUP and n >= 4:
        return TargetPortGroupDesignator(**common, target_port_group=be(d, 2, 2))
    if dtype == DesignatorType.LOGICAL_UNIT_GROUP and n >= 4:
        return LogicalUnitGroupDesignator(**common, logical_unit_group=be(d, 2, 2))
    if dtype == DesignatorType.MD5_LOGICAL_UNIT and n >= 16:
        return Md5Designator(**common, digest=d[:16])
    if dtype == DesignatorType.SCSI_NAME_STRING:
        return ScsiNameStringDesignator(**common, name=d.split(b"\0", 1)[0].decode("utf-8", "replace"))
    if dtype == DesignatorType.UUID and n >= 18:
        return UuidDesignator(**common, uuid_type=d[0] >> 4, uuid=uuid.UUID(bytes=d[2:18]))
    return Designator(**common)


def parse_designator(buf: bytes, pos: int) -> Tuple[Designator, int]:
    """Parse the designation descriptor at ``buf[pos:]``; return it and the next offset.

    Raises :class:`MalformedResponse` when the descriptor runs past the end
    of ``buf``.
    """
    if pos + 4 > len(buf):
        raise MalformedResponse(f"designation descriptor at byte {pos} is cut off")
    length = buf[pos + 3]
    end = pos + 4 + length
    if end > len(buf):
        raise MalformedResponse(f"designation descriptor at byte {pos} runs past the end ({end} > {len(buf)})")
    b0, b1 = buf[pos], buf[pos + 1]
    association = (b1 >> 4) & 0x03
    piv = bool(b1 & 0x80)
    protocol = b0 >> 4 if piv and association in (Association.TARGET_PORT, Association.TARGET_DEVICE) else None
    dtype = b1 & 0x0F
    data = bytes(buf[pos + 4 : end])
    common = dict(
        designator_type=enum_or_int(DesignatorType, dtype),
        association=Association(association),
        code_set=enum_or_int(CodeSet, b0 & 0x0F),
        piv=piv,
        protocol_identifier=enum_or_int(ProtocolIdentifier, protocol) if protocol is not None else None,
        data=data,
    )
    return _typed(dtype, common, data), end


def _lu_name_rank(d: Designator) -> int:
    """How strongly a logical unit designator names it, for :func:`lu_name`; 0: not at all."""
    n = len(d.data)
    if isinstance(d, ScsiNameStringDesignator):
        return 70 if d.name else 0
    if isinstance(d, NaaDesignator) and n == 16:
        return 60  # NAA IEEE Registered Extended
    if isinstance(d, Eui64Designator):
        return {16: 50, 12: 40, 8: 20}.get(n, 0)
    if isinstance(d, NaaDesignator) and n == 8:
        return 30  # NAA IEEE Registered, IEEE Extended, locally assigned
    if isinstance(d, T10VendorIdDesignator):
        return 10
    return 0


def lu_name(designators: "Iterable[Designator]") -> Optional[str]:
    """The name of the logical unit among ``designators`` (those of VPD page 83h) as one string:
    ``naa.5000c500a1b2c3d4``, ``eui.0123456789abcdef``, ``t10.LIO-ORG …``, ``iqn.…``; None without one.

    Only designators whose association is the logical unit count.  The
    choice is the Linux kernel's (``scsi_vpd_lun_id()``, which gives the
    sysfs ``wwid`` attribute), so that this string and ``wwid`` agree: a SCSI
    name string first, then NAA IEEE Registered Extended (16 bytes), EUI-64
    of 16 then 12 bytes, an 8-byte NAA, an 8-byte EUI-64, and last a T10
    vendor ID designator; of two equally good ones the later wins, as there.
    """
    best: Optional[Designator] = None
    best_rank = 0
    for d in designators:
        if d.association != Association.LOGICAL_UNIT:
            continue
        rank = _lu_name_rank(d)
        if rank and rank >= best_rank:
            best, best_rank = d, rank
    return best.id_string if best is not None else None
