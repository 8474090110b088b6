"""REPORT LUNS parameter data (SPC-5 6.33) and LUN structure (SAM-5 4.7)."""

from __future__ import annotations

import enum
from typing import List, Optional, Tuple

import attrs

from sgpy.errors import MalformedResponse
from sgpy.responses._common import length_header, read_header

__all__ = ["AddressMethod", "LunLevel", "Lun", "ReportLunsData"]


class AddressMethod(enum.IntEnum):
    """The ADDRESS METHOD field, bits 7-6 of each level's first byte (SAM-5 table 11)."""

    PERIPHERAL = 0
    FLAT = 1
    LOGICAL_UNIT = 2
    EXTENDED = 3


@attrs.frozen
class LunLevel:
    """One level of a LUN (SAM-5 4.7.2 to 4.7.7).

    Peripheral device addressing: ``bus`` and ``target_or_lun``.  Flat space:
    ``lun`` (14 bits).  Logical unit addressing: ``target``, ``bus``,
    ``lun``.  Extended addressing: ``extended_method``, ``length`` and
    ``extended_address`` (e.g. a well-known LUN is method 1, length 0;
    extended flat space is method 2); the address is None when the length
    runs past the end of the LUN.  ``raw`` holds the level's bytes.
    """

    method: AddressMethod
    raw: bytes
    bus: Optional[int] = None
    target: Optional[int] = None
    lun: Optional[int] = None
    target_or_lun: Optional[int] = None
    extended_method: Optional[int] = None
    length: Optional[int] = None
    extended_address: Optional[int] = None

    @property
    def well_known(self) -> bool:
        """True for a well-known logical unit (extended method 1, length 0)."""
        return self.method == AddressMethod.EXTENDED and self.extended_method == 1 and self.length == 0


def _levels(raw: bytes) -> Tuple[LunLevel, ...]:
    """Split an 8-byte LUN into its levels; trailing all-zero levels end it."""
    levels: List[LunLevel] = []
    pos = 0
    while pos < 8:
        if levels and not any(raw[pos:]):
            break
        b0 = raw[pos]
        method = AddressMethod(b0 >> 6)
        if method == AddressMethod.EXTENDED:
            length_code = (b0 >> 4) & 0x03
            size = 2 * (length_code + 1)  # SAM-5 table 20: 2, 4, 6 or 8 bytes
            chunk = bytes(raw[pos : pos + size])
            # A level whose LENGTH (SAM-5 table 20) runs past the 8-byte LUN
            # has no whole address: None, not the bytes present padded with zeros.
            address = int.from_bytes(chunk[1:], "big") if len(chunk) == size else None
            levels.append(
                LunLevel(
                    method=method,
                    raw=chunk,
                    extended_method=b0 & 0x0F,
                    length=length_code,
                    extended_address=address,
                )
            )
            pos += size
            continue
        b1 = raw[pos + 1]
        chunk = bytes(raw[pos : pos + 2])
        if method == AddressMethod.PERIPHERAL:
            levels.append(LunLevel(method=method, raw=chunk, bus=b0 & 0x3F, target_or_lun=b1))
        elif method == AddressMethod.FLAT:
            levels.append(LunLevel(method=method, raw=chunk, lun=(b0 & 0x3F) << 8 | b1))
        else:
            levels.append(LunLevel(method=method, raw=chunk, target=b0 & 0x3F, bus=b1 >> 5, lun=b1 & 0x1F))
        pos += 2
    return tuple(levels)


@attrs.frozen
class Lun:
    """An 8-byte LUN: its levels, and the integer Linux uses for it.

    ``linux`` follows the kernel's ``scsilun_to_int()``: each 2-byte level
    becomes 16 bits of the integer, first level lowest, so single-level
    LUN 5 is 5 and flat-space LUN 0x4105 is 0x4105.
    """

    raw: bytes
    levels: Tuple[LunLevel, ...]
    linux: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Lun":
        """Decode one 8-byte LUN."""
        raw = bytes(raw)
        if len(raw) != 8:
            raise MalformedResponse(f"a LUN is 8 bytes, not {len(raw)}")
        linux = 0
        for i in range(0, 8, 2):
            linux |= (raw[i] << 8 | raw[i + 1]) << (i * 8)
        return cls(raw=raw, levels=_levels(raw), linux=linux)

    def __str__(self) -> str:
        return f"{self.linux} ({self.raw.hex()})"


@attrs.frozen
class ReportLunsData:
    """REPORT LUNS parameter data, SPC-5 table 284: LUN LIST LENGTH then 8-byte LUNs."""

    luns: Tuple[Lun, ...] = ()
    lun_list_length: int = 0
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """LUN LIST LENGTH + 8, or None when the first 4 bytes are missing."""
        return length_header(buf, 0, 4, 8)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "ReportLunsData":
        """Parse the list; LUNs cut off by a short allocation length are dropped."""
        buf, wanted = read_header(buf, 0, 4, 8, "REPORT LUNS data")
        length = wanted - 8
        if length % 8:
            raise MalformedResponse(f"LUN LIST LENGTH {length} is not a multiple of 8")
        data = buf[:wanted]
        luns = tuple(Lun.from_bytes(data[p : p + 8]) for p in range(8, len(data) - 7, 8))
        return cls(luns=luns, lun_list_length=length, truncated=len(buf) < wanted, wanted_length=wanted)

    @property
    def linux_luns(self) -> Tuple[int, ...]:
        """The LUNs as Linux integers."""
        return tuple(lun.linux for lun in self.luns)
