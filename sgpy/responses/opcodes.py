"""REPORT SUPPORTED OPERATION CODES parameter data (SPC-5 6.35)."""

from __future__ import annotations

import enum
from typing import Optional, Tuple

import attrs

from sgpy.errors import MalformedResponse
from sgpy.responses._common import be, descriptors, enum_or_int, length_header, need, read_header, span

__all__ = [
    "CommandTimeouts",
    "CommandDescriptor",
    "SupportedOperationCodes",
    "CommandSupport",
    "OneCommandSupport",
    "MLU_TEXT",
]


@attrs.frozen
class CommandTimeouts:
    """Command timeouts descriptor, SPC-5 table 315 (12 bytes; timeouts in seconds)."""

    command_specific: int
    nominal_command_processing_timeout: int
    recommended_command_timeout: int

    @classmethod
    def from_bytes(cls, buf: bytes) -> "CommandTimeouts":
        """Parse the 12-byte descriptor (DESCRIPTOR LENGTH must be at least 0Ah)."""
        if len(buf) < 12:
            raise MalformedResponse(f"command timeouts descriptor: {len(buf)} bytes, 12 needed")
        if be(buf, 0, 2) < 0x0A:
            raise MalformedResponse(f"command timeouts DESCRIPTOR LENGTH {be(buf, 0, 2)} is below 0Ah")
        return cls(buf[3], be(buf, 4, 4), be(buf, 8, 4))


@attrs.frozen
class CommandDescriptor:
    """One command descriptor of the all-commands format, SPC-5 table 313.

    ``service_action`` is None unless SERVACTV is set; ``flags`` is byte 5
    as read (CTDP is bit 1, SERVACTV bit 0; newer standards add bits there).
    """

    opcode: int
    service_action: Optional[int]
    cdb_length: int
    flags: int
    timeouts: Optional[CommandTimeouts] = None

    @property
    def ctdp(self) -> bool:
        """A command timeouts descriptor follows."""
        return bool(self.flags & 0x02)


def _descriptor_size(data: bytes, pos: int) -> int:
    """A command descriptor's size: 8 bytes, 20 when CTDP (byte 5 bit 1) adds the timeouts."""
    return 20 if data[pos + 5] & 0x02 else 8


@attrs.frozen
class SupportedOperationCodes:
    """All-commands parameter data (REPORTING OPTIONS 000b), SPC-5 table 312."""

    commands: Tuple[CommandDescriptor, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """COMMAND DATA LENGTH + 4, or None when the 4-byte header is incomplete."""
        return length_header(buf, 0, 4, 4)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "SupportedOperationCodes":
        """Parse every command descriptor (8 bytes, 20 with a timeouts descriptor)."""
        buf, wanted = read_header(buf, 0, 4, 4, "supported operation codes")
        truncated = len(buf) < wanted
        data = buf[:wanted]
        spans = descriptors(data, 4, truncated, 8, _descriptor_size, "command descriptor", "data length")
        commands = tuple(
            CommandDescriptor(
                opcode=data[pos],
                service_action=be(data, pos + 2, 2) if data[pos + 5] & 0x01 else None,
                cdb_length=be(data, pos + 6, 2),
                flags=data[pos + 5],
                timeouts=CommandTimeouts.from_bytes(data[pos + 8 : end]) if end - pos == 20 else None,
            )
            for pos, end in spans
        )
        return cls(commands=commands, truncated=truncated, wanted_length=wanted)

    def find(self, opcode: int, service_action: Optional[int] = None) -> Optional[CommandDescriptor]:
        """The descriptor for this opcode (and service action), or None."""
        for c in self.commands:
            if c.opcode == opcode and c.service_action == service_action:
                return c
        return None


#: The MULTIPLE LOGICAL UNITS field of one-command support data (SPC-5 6.35.3): value -> meaning.
MLU_TEXT = {
    0: "not reported",
    1: "affects only this logical unit",
    2: "affects more than one, but not every, logical unit of the target",
    3: "affects every logical unit of the target",
}


class CommandSupport(enum.IntEnum):
    """The SUPPORT field, SPC-5 table 317."""

    NOT_AVAILABLE = 0
    NOT_SUPPORTED = 1
    SUPPORTED = 3
    SUPPORTED_VENDOR_SPECIFIC = 5


@attrs.frozen
class OneCommandSupport:
    """One-command parameter data (REPORTING OPTIONS 001b-011b), SPC-5 table 316.

    ``cdb_usage`` is the CDB usage map: for each CDB byte, the bits the
    device looks at (the opcode byte holds the opcode itself); None when a
    short answer cuts it.
    """

    support: int = 0
    flags: int = 0
    cdb_usage: Optional[bytes] = b""
    timeouts: Optional[CommandTimeouts] = None
    truncated: bool = False
    wanted_length: Optional[int] = None

    @property
    def ctdp(self) -> bool:
        """A command timeouts descriptor follows the usage map."""
        return bool(self.flags & 0x80)

    @property
    def supported(self) -> bool:
        """True for SUPPORT 011b or 101b."""
        return self.support in (CommandSupport.SUPPORTED, CommandSupport.SUPPORTED_VENDOR_SPECIFIC)

    @property
    def mlu(self) -> int:
        """MULTIPLE LOGICAL UNITS (byte 1 bits 6-5, SPC-5 table 316): whether the command can
        affect logical units other than the one it is sent to (:data:`MLU_TEXT`); 0 not reported."""
        return (self.flags >> 5) & 0x03

    @property
    def cdlp(self) -> int:
        """COMMAND DURATION LIMIT PAGE (byte 1 bits 4-3, SPC-5 table 316): 0 no command duration
        limit applies, 1 the limits of mode page 0Ah/03h (A), 2 of mode page 0Ah/04h (B)."""
        return (self.flags >> 3) & 0x03

    def usage_bits(self) -> Tuple[Tuple[int, ...], ...]:
        """For each CDB byte after the opcode, the bit numbers (7 to 0) the device looks at: the
        bits set in the CDB usage map (SPC-5 6.35.3; byte 0 holds the opcode itself, not a mask)."""
        usage = self.cdb_usage or b""
        return tuple(tuple(bit for bit in range(7, -1, -1) if byte >> bit & 1) for byte in usage[1:])

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """4 + CDB SIZE (+ 12 with CTDP), or None when the 4-byte header is incomplete."""
        if len(buf) < 4:
            return None
        return 4 + be(buf, 2, 2) + (12 if buf[1] & 0x80 else 0)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "OneCommandSupport":
        """Parse the support value, the CDB usage map and the timeouts descriptor."""
        buf = bytes(buf)
        need(buf, 4, "one-command support data")
        flags = buf[1]
        size = be(buf, 2, 2)
        wanted = 4 + size + (12 if flags & 0x80 else 0)
        timeouts = None
        if flags & 0x80 and len(buf) >= wanted:
            timeouts = CommandTimeouts.from_bytes(buf[4 + size : wanted])
        return cls(
            support=enum_or_int(CommandSupport, flags & 0x07),
            flags=flags,
            cdb_usage=span(buf, 4, 4 + size),
            timeouts=timeouts,
            truncated=len(buf) < wanted,
            wanted_length=wanted,
        )

