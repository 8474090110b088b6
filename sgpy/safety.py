"""The data-loss safety policy: which commands may change or destroy data.

Pure: nothing here does I/O.  Every command falls in one of three classes
(:class:`Risk`), ordered from harmless to dangerous:

``READ``
    reads, or changes nothing a later read would see (INQUIRY, READ,
    TEST UNIT READY, MODE SENSE, START STOP UNIT...);
``DATA_CHANGING``
    changes stored data or settings, one command's worth at a time (WRITE*,
    WRITE SAME, UNMAP, COMPARE AND WRITE, MODE SELECT, LOG SELECT,
    PERSISTENT RESERVE OUT...);
``IRREVERSIBLE``
    can destroy the whole medium, or the device itself, with no way back
    (FORMAT UNIT, SANITIZE, WRITE BUFFER (microcode download), ATA
    PASS-THROUGH, vendor-specific operation codes C0h-FFh).

A command class says which it is through its class attributes
``changes_data`` and ``irreversible`` (see :mod:`sgpy.cdb.base`).  A
:class:`~sgpy.command.RawCommand` is classified by its operation code:
vendor-specific codes (C0h-FFh, SPC-5 4.2.5.1: groups 6 and 7) are
irreversible, a code that sgpy knows takes the class of the commands
registered for it or of :data:`OPCODE_RISK`, and any other code counts as
data-changing when it sends data.

A :class:`Policy` says how far a caller is willing to go;
:meth:`Policy.check` refuses anything beyond with
:class:`~sgpy.errors.UnsafeCommand` before the command reaches a device.
The same policy serves the library (``Channel.from_path(p,
read_only=True)`` or ``policy=``) and the command line
(``--allow-data-loss``, ``--allow-irreversible``).
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional

import attrs

from sgpy.constants import Direction
from sgpy.errors import UnsafeCommand

__all__ = [
    "Risk",
    "Policy",
    "READ_ONLY",
    "ALLOW_DATA_LOSS",
    "ALLOW_ALL",
    "OPCODE_RISK",
    "classify",
    "classify_cdb",
    "opcode_risk",
    "check",
    "check_channel",
]

# First vendor-specific operation code: groups 6 (C0h-DFh) and 7 (E0h-FFh)
# are vendor specific, SPC-5 4.2.5.1 table 39.
VENDOR_SPECIFIC_FIRST = 0xC0


class Risk(enum.IntEnum):
    """How much a command can change on the device; larger is more dangerous."""

    READ = 0
    DATA_CHANGING = 1
    IRREVERSIBLE = 2

    @property
    def label(self) -> str:
        """The word used in messages and JSON: ``read``, ``data-changing``, ``irreversible``."""
        return self.name.lower().replace("_", "-")


_R = Risk.READ
_D = Risk.DATA_CHANGING
_I = Risk.IRREVERSIBLE

#: Operation codes sgpy knows the effect of, whether or not it has a command
#: class for them; used for RawCommand (and for CDB bytes given in hex).
#: Codes shared by several device types take the most dangerous meaning.
OPCODE_RISK: Dict[int, Risk] = {
    0x04: _I,  # FORMAT UNIT (SBC-4 5.4) / FORMAT MEDIUM (SSC-5 7.2)
    0x07: _D,  # REASSIGN BLOCKS (SBC-4 5.24)
    0x0A: _D,  # WRITE(6) (SBC-4 5.46)
    0x10: _D,  # WRITE FILEMARKS(6) (SSC-5 7.10)
    0x15: _D,  # MODE SELECT(6) (SPC-5 6.12)
    0x18: _D,  # COPY (SPC-2, obsolete)
    0x19: _I,  # ERASE(6) (SSC-5 7.1): erases the medium from the current position
    0x2A: _D,  # WRITE(10) (SBC-4 5.40)
    0x2C: _I,  # ERASE(10) (MMC-6 6.4)
    0x2E: _D,  # WRITE AND VERIFY(10) (SBC-4 5.43)
    0x38: _I,  # FORMAT WITH PRESET (SBC-4 5.5)
    0x3A: _D,  # COPY AND VERIFY (SPC-2, obsolete)
    0x3B: _I,  # WRITE BUFFER (SPC-5 6.49): microcode download
    0x3D: _D,  # UPDATE BLOCK (SBC-2, obsolete)
    0x3F: _D,  # WRITE LONG(10) (SBC-4 5.48)
    0x41: _D,  # WRITE SAME(10) (SBC-4 5.49)
    0x42: _D,  # UNMAP (SBC-4 5.37)
    0x48: _I,  # SANITIZE (SBC-4 5.30)
    0x4C: _D,  # LOG SELECT (SPC-5 6.8)
    0x50: _D,  # XDWRITE(10) (SBC-3)
    0x51: _D,  # XPWRITE(10) (SBC-3)
    0x53: _D,  # XDWRITEREAD(10) (SBC-3)
    0x55: _D,  # MODE SELECT(10) (SPC-5 6.13)
    0x5F: _D,  # PERSISTENT RESERVE OUT (SPC-5 6.17)
    0x80: _D,  # XDWRITE EXTENDED(16) (SBC-3) / WRITE FILEMARKS(16) (SSC-5 7.11)
    0x83: _D,  # THIRD-PARTY COPY OUT: EXTENDED COPY, WRITE USING TOKEN (SPC-5 6.4)
    0x85: _I,  # ATA PASS-THROUGH(16) (SAT-4 12.2.2)
    0x89: _D,  # COMPARE AND WRITE (SBC-4 5.3)
    0x8A: _D,  # WRITE(16) (SBC-4 5.41)
    0x8B: _D,  # ORWRITE(16) (SBC-4 5.18)
    0x8D: _D,  # WRITE ATTRIBUTE (SPC-5 6.48)
    0x8E: _D,  # WRITE AND VERIFY(16) (SBC-4 5.44)
    0x93: _D,  # WRITE SAME(16) (SBC-4 5.50) / ERASE(16) (SSC-5)
    0x94: _D,  # ZBC OUT: RESET WRITE POINTER, FINISH ZONE (ZBC-2 5.3)
    0x96: _I,  # WRITE BUFFER(16) (SPC-5 6.50)
    0x9A: _D,  # WRITE STREAM(16) (SBC-4 5.52)
    0x9C: _D,  # WRITE ATOMIC(16) (SBC-4 5.39)
    0x9F: _D,  # SERVICE ACTION OUT(16): WRITE LONG(16), WRITE SCATTERED (SBC-4)
    0xA1: _I,  # ATA PASS-THROUGH(12) (SAT-4 12.2.1)
    0xA4: _D,  # MAINTENANCE OUT: SET IDENTIFYING INFORMATION... (SPC-5 6.38)
    0xAA: _D,  # WRITE(12) (SBC-4 5.42)
    0xAC: _I,  # ERASE(12) (optical memory devices, SBC-2)
    0xAE: _D,  # WRITE AND VERIFY(12) (SBC-3)
    0xB5: _D,  # SECURITY PROTOCOL OUT (SPC-5 6.36)
    0xB6: _D,  # SEND VOLUME TAG (SMC-3)
    0xBF: _D,  # SEND DVD STRUCTURE (MMC) / VOLUME SET OUT
}

# VARIABLE LENGTH CDB (7Fh): the service action in bytes 8-9 names the command
# (SPC-5 4.2.5.3).  These are the ones sgpy knows; any other, including the
# OSD commands (FORMAT OSD among them) and those of future standards, is
# irreversible, because sgpy cannot tell what it does.
VARIABLE_LENGTH = 0x7F
VARIABLE_LENGTH_RISK: Dict[int, Risk] = {
    0x0001: _D,  # REBUILD(32) (SBC-2)
    0x0002: _R,  # REGENERATE(32) (SBC-2)
    0x0003: _R,  # XDREAD(32) (SBC-3)
    0x0004: _D,  # XDWRITE(32) (SBC-3)
    0x0005: _D,  # XDWRITE EXTENDED(32) (SBC-3)
    0x0006: _D,  # XPWRITE(32) (SBC-3)
    0x0007: _D,  # XDWRITEREAD(32) (SBC-3)
    0x0008: _D,  # XDWRITE EXTENDED(64) (SBC-3)
    0x0009: _R,  # READ(32) (SBC-4)
    0x000A: _R,  # VERIFY(32) (SBC-4)
    0x000B: _D,  # WRITE(32) (SBC-4)
    0x000C: _D,  # WRITE AND VERIFY(32) (SBC-4)
    0x000D: _D,  # WRITE SAME(32) (SBC-4)
    0x000E: _D,  # ORWRITE(32) (SBC-4)
    0x000F: _D,  # WRITE ATOMIC(32) (SBC-4)
    0x0010: _D,  # WRITE STREAM(32) (SBC-4)
    0x0011: _D,  # WRITE SCATTERED(32) (SBC-4)
    0x0012: _R,  # GET LBA STATUS(32) (SBC-4)
    0x1FF0: _I,  # ATA PASS-THROUGH(32) (SAT-4): any ATA command, as (12)/(16) do
}


def _variable_length_risk(cdb: bytes) -> Risk:
    """The class of a 7Fh CDB by its service action; irreversible when unknown or absent."""
    if len(cdb) < 10:
        return Risk.IRREVERSIBLE
    return VARIABLE_LENGTH_RISK.get(int.from_bytes(cdb[8:10], "big"), Risk.IRREVERSIBLE)


_WHAT = {
    Risk.DATA_CHANGING: "changes data on the device",
    Risk.IRREVERSIBLE: "can irreversibly destroy data (or the device)",
}


# operation code -> the most dangerous class registered for it (built on first use).
_by_class: Optional[Dict[int, Risk]] = None


def _class_risk(cls_or_cmd: Any) -> Risk:
    """The risk read from ``changes_data`` / ``irreversible``."""
    if cls_or_cmd.irreversible:
        return Risk.IRREVERSIBLE
    if cls_or_cmd.changes_data:
        return Risk.DATA_CHANGING
    return Risk.READ


def opcode_risk(opcode: int) -> Optional[Risk]:
    """What sgpy knows about an operation code alone, or None when it knows nothing.

    Vendor-specific codes are irreversible; otherwise the most dangerous of
    the command classes registered for the code and :data:`OPCODE_RISK`.
    """
    if not 0 <= opcode <= 0xFF:
        raise ValueError(f"operation code must be 0..255, got {opcode!r}")
    if opcode >= VENDOR_SPECIFIC_FIRST or opcode == VARIABLE_LENGTH:
        # 7Fh: without its service action, the most dangerous one counts.
        return Risk.IRREVERSIBLE
    global _by_class
    if _by_class is None:
        from sgpy.command import all_commands

        table: Dict[int, Risk] = {}
        for c in all_commands():
            table[c.opcode] = max(table.get(c.opcode, Risk.READ), _class_risk(c))
        _by_class = table
    known = [r for r in (_by_class.get(opcode), OPCODE_RISK.get(opcode)) if r is not None]
    return max(known) if known else None


def classify(cmd: Any) -> Risk:
    """The :class:`Risk` of a command (an instance or a command class).

    Command classes answer through ``changes_data`` and ``irreversible``.
    A RawCommand takes the most dangerous of its own answer and what its
    operation code says (:func:`opcode_risk`); an operation code sgpy does
    not know counts as data-changing when the command sends data.
    """
    risk = _class_risk(cmd)
    cdb = getattr(cmd, "cdb", None) if getattr(cmd, "name", None) == "RawCommand" else None
    if isinstance(cdb, (bytes, bytearray)) and cdb:
        by_code = opcode_risk(cdb[0])
        if by_code is None:
            by_code = Risk.DATA_CHANGING if cmd.direction is Direction.TO_DEVICE else Risk.READ
        if cdb[0] == VARIABLE_LENGTH:
            by_code = _variable_length_risk(bytes(cdb))
        risk = max(risk, by_code)
    return risk


def classify_cdb(cdb: bytes, direction: Direction = Direction.NONE) -> Risk:
    """The :class:`Risk` of raw CDB bytes sent with ``direction`` (as ``sgpy raw`` does)."""
    from sgpy.command import RawCommand

    length = 1 if direction is not Direction.NONE else 0
    return classify(RawCommand(cdb=bytes(cdb), direction=direction, length=length))


@attrs.frozen
class Policy:
    """How far a caller lets commands go.

    ``allow_data_loss`` lets data-changing commands through;
    ``allow_irreversible`` lets everything through (it includes
    ``allow_data_loss``: whoever may format a disk may also write to it).
    The default, ``Policy()``, is read-only.
    """

    allow_data_loss: bool = False
    allow_irreversible: bool = False

    @property
    def limit(self) -> Risk:
        """The most dangerous :class:`Risk` this policy lets through."""
        if self.allow_irreversible:
            return Risk.IRREVERSIBLE
        if self.allow_data_loss:
            return Risk.DATA_CHANGING
        return Risk.READ

    def allows(self, cmd: Any) -> bool:
        """True when ``cmd`` (a command, a command class or a :class:`Risk`) may be sent."""
        risk = cmd if isinstance(cmd, Risk) else classify(cmd)
        return risk <= self.limit

    def check(self, cmd: Any, *, where: str = "", remedy: Optional[str] = None) -> Risk:
        """Return ``cmd``'s :class:`Risk`, or raise UnsafeCommand when the policy refuses it.

        ``where`` names what refuses it (e.g. a channel) and ``remedy`` what
        to do instead; by default the message names the policy option that
        would allow it.  The exception's ``risk`` attribute holds the class.
        """
        risk = classify(cmd)
        if risk <= self.limit:
            return risk
        name = getattr(cmd, "name", None) or type(cmd).__name__
        if name == "RawCommand":
            name = f"RawCommand (operation code {cmd.cdb[0]:02X}h)"
        if remedy is None:
            option = "allow_irreversible=True" if risk is Risk.IRREVERSIBLE else "allow_data_loss=True"
            remedy = f"use a policy with {option} to send it"
        whom = f"{where} refuses it" if where else "the safety policy refuses it"
        exc = UnsafeCommand(f"{name} {_WHAT[risk]} ({risk.label}); {whom}: {remedy}", command=cmd)
        exc.risk = risk  # type: ignore[attr-defined]
        raise exc


#: Reads only: refuses data-changing and irreversible commands.
READ_ONLY = Policy()
#: Data-changing commands pass; irreversible ones are refused.
ALLOW_DATA_LOSS = Policy(allow_data_loss=True)
#: Everything passes.
ALLOW_ALL = Policy(allow_data_loss=True, allow_irreversible=True)


def check_channel(channel: Any, cmd: Any) -> Risk:
    """Apply a channel's policy to ``cmd`` (what ``Channel`` does before anything is sent).

    ``channel.read_only`` means :data:`READ_ONLY`; otherwise
    ``channel.policy`` (None lets everything through).  Raises
    UnsafeCommand naming the channel.
    """
    if channel.read_only:
        return READ_ONLY.check(cmd, where=f"{channel!r}, opened read_only=True,",
                               remedy="open it without read_only (or with a policy that allows it)")
    policy = channel.policy
    if policy is None:
        return classify(cmd)
    return policy.check(cmd, where=repr(channel), remedy="open the channel with a policy that allows it")


def check(cmd: Any, *, allow_data_loss: bool = False, allow_irreversible: bool = False, where: str = "",
          remedy: Optional[str] = None) -> Risk:
    """Classify ``cmd`` and raise UnsafeCommand unless the options allow it (see :class:`Policy`)."""
    return Policy(allow_data_loss, allow_irreversible).check(cmd, where=where, remedy=remedy)
