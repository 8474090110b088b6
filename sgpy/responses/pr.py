"""PERSISTENT RESERVE IN parameter data (SPC-5 6.16)."""

from __future__ import annotations

from typing import Optional, Tuple

import attrs

from sgpy.constants import PersistentReservationType, ProtocolIdentifier
from sgpy.errors import MalformedResponse
from sgpy.responses._common import be, bits, decode_layout, descriptors, enum_or_int, length_header, read_header

__all__ = [
    "PrReadKeys",
    "Reservation",
    "PrReadReservation",
    "PrReportCapabilities",
    "TransportId",
    "FullStatusDescriptor",
    "PrFullStatus",
]


def _prgeneration_header(buf: bytes, what: str) -> Tuple[bytes, int, int, bool]:
    """PRGENERATION and ADDITIONAL LENGTH (SPC-5 tables 175, 177, 184)."""
    buf, wanted = read_header(buf, 4, 4, 8, what)
    return buf[:wanted], be(buf, 0, 4), wanted, len(buf) < wanted


def _required(buf: bytes) -> Optional[int]:
    """ADDITIONAL LENGTH + 8, or None when the 8-byte header is incomplete."""
    return length_header(buf, 4, 4, 8)


@attrs.frozen
class PrReadKeys:
    """READ KEYS, SPC-5 table 175: the registered reservation keys."""

    prgeneration: int = 0
    keys: Tuple[int, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    required_length = staticmethod(_required)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "PrReadKeys":
        """Parse the key list (8 bytes per key)."""
        data, gen, wanted, truncated = _prgeneration_header(buf, "READ KEYS data")
        if (wanted - 8) % 8:
            raise MalformedResponse(f"READ KEYS ADDITIONAL LENGTH {wanted - 8} is not a multiple of 8")
        keys = tuple(be(data, p, 8) for p in range(8, len(data) - 7, 8))
        return cls(prgeneration=gen, keys=keys, truncated=truncated, wanted_length=wanted)


@attrs.frozen
class Reservation:
    """The persistent reservation held, SPC-5 table 177 bytes 8-23."""

    key: int
    scope: int
    type: int


@attrs.frozen
class PrReadReservation:
    """READ RESERVATION, SPC-5 table 177: ``reservation`` is None when none is held."""

    prgeneration: int = 0
    reservation: Optional[Reservation] = None
    truncated: bool = False
    wanted_length: Optional[int] = None

    required_length = staticmethod(_required)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "PrReadReservation":
        """Parse the reservation, if any (ADDITIONAL LENGTH 0 or 10h)."""
        data, gen, wanted, truncated = _prgeneration_header(buf, "READ RESERVATION data")
        reservation = None
        if len(data) >= 22:
            reservation = Reservation(
                key=be(data, 8, 8),
                scope=data[21] >> 4,
                type=enum_or_int(PersistentReservationType, data[21] & 0x0F),
            )
        return cls(prgeneration=gen, reservation=reservation, truncated=truncated, wanted_length=wanted)


@attrs.frozen
class PrReportCapabilities:
    """REPORT CAPABILITIES, SPC-5 table 179.

    The ``wr_ex``... fields are the PERSISTENT RESERVATION TYPE MASK bits
    (valid when ``tmv`` is set).
    """

    length: int = bits(0, 0, 16)
    rlr_c: Optional[bool] = bits(2, 7, 1, flag=True)
    crh: Optional[bool] = bits(2, 4, 1, flag=True)
    sip_c: Optional[bool] = bits(2, 3, 1, flag=True)
    atp_c: Optional[bool] = bits(2, 2, 1, flag=True)
    ptpl_c: Optional[bool] = bits(2, 0, 1, flag=True)
    tmv: Optional[bool] = bits(3, 7, 1, flag=True)
    allow_commands: Optional[int] = bits(3, 4, 3)
    ptpl_a: Optional[bool] = bits(3, 0, 1, flag=True)
    wr_ex_ar: Optional[bool] = bits(4, 7, 1, flag=True)
    ex_ac_ro: Optional[bool] = bits(4, 6, 1, flag=True)
    wr_ex_ro: Optional[bool] = bits(4, 5, 1, flag=True)
    ex_ac: Optional[bool] = bits(4, 3, 1, flag=True)
    wr_ex: Optional[bool] = bits(4, 1, 1, flag=True)
    ex_ac_ar: Optional[bool] = bits(5, 0, 1, flag=True)
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """The LENGTH field (normally 8), or None when it is missing."""
        return length_header(buf, 0, 2, 0)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "PrReportCapabilities":
        """Parse the capability bits."""
        buf, wanted = read_header(buf, 0, 2, 0, "REPORT CAPABILITIES data")
        return cls(**decode_layout(cls, buf[: max(wanted, 2)]), truncated=len(buf) < wanted, wanted_length=wanted)


@attrs.frozen
class TransportId:
    """A TransportID, SPC-5 7.6.4 (FORMAT CODE bits 7-6, PROTOCOL IDENTIFIER bits 3-0).

    :attr:`name` decodes the common protocols: Fibre Channel N_Port name,
    SAS address, iSCSI name, SRP and IEEE 1394 identifiers.
    """

    protocol_identifier: int
    format_code: int
    data: bytes

    @property
    def name(self) -> str:
        """A readable form of the identifier."""
        d = self.data
        p = self.protocol_identifier
        if p == ProtocolIdentifier.FCP and len(d) >= 16:
            return "0x" + d[8:16].hex()
        if p == ProtocolIdentifier.SAS and len(d) >= 12:
            return "0x" + d[4:12].hex()
        if p == ProtocolIdentifier.SBP and len(d) >= 16:
            return "0x" + d[8:16].hex()
        if p == ProtocolIdentifier.SRP and len(d) >= 24:
            return "0x" + d[8:24].hex()
        if p == ProtocolIdentifier.ISCSI and len(d) >= 4:
            return d[4 : 4 + be(d, 2, 2)].split(b"\0", 1)[0].decode("utf-8", "replace")
        return d.hex()

    def __str__(self) -> str:
        return self.name


def _transport_id(d: bytes) -> TransportId:
    return TransportId(
        protocol_identifier=enum_or_int(ProtocolIdentifier, d[0] & 0x0F) if d else 0,
        format_code=d[0] >> 6 if d else 0,
        data=bytes(d),
    )


@attrs.frozen
class FullStatusDescriptor:
    """One full status descriptor, SPC-5 table 185: a registration and its I_T nexus."""

    key: int
    all_tg_pt: bool
    r_holder: bool
    scope: int
    type: int
    relative_target_port: int
    transport_id: TransportId


def _full_status_size(data: bytes, pos: int) -> int:
    """A full status descriptor's size: 24 bytes plus its ADDITIONAL DESCRIPTOR LENGTH (bytes 20-23)."""
    return 24 + be(data, pos + 20, 4)


@attrs.frozen
class PrFullStatus:
    """READ FULL STATUS, SPC-5 table 184: every registration and who holds the reservation."""

    prgeneration: int = 0
    descriptors: Tuple[FullStatusDescriptor, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    required_length = staticmethod(_required)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "PrFullStatus":
        """Parse each descriptor (24 bytes plus its TransportID)."""
        data, gen, wanted, truncated = _prgeneration_header(buf, "READ FULL STATUS data")
        spans = descriptors(data, 8, truncated, 24, _full_status_size, "full status descriptor", "additional length")
        out = tuple(
            FullStatusDescriptor(
                key=be(data, pos, 8),
                all_tg_pt=bool(data[pos + 12] & 0x02),
                r_holder=bool(data[pos + 12] & 0x01),
                scope=data[pos + 13] >> 4,
                type=enum_or_int(PersistentReservationType, data[pos + 13] & 0x0F),
                relative_target_port=be(data, pos + 18, 2),
                transport_id=_transport_id(data[pos + 24 : end]),
            )
            for pos, end in spans
        )
        return cls(prgeneration=gen, descriptors=out, truncated=truncated, wanted_length=wanted)
