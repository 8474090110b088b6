"""SCSI operation code names, by operation code and peripheral device type.

The names come from T10's operation code list, turned into literal tables
in :mod:`sgpy._opcode_table` by tools/gen_opcodes.py; this module holds the
lookup that chooses among a code's names for a given device type.
"""

from __future__ import annotations

from typing import Optional, Tuple

from sgpy._opcode_table import DEVICE_KEYS, OPCODE_NAMES

__all__ = ["opcode_name", "OPCODE_NAMES", "DEVICE_KEYS"]

# Device types whose commands are the direct-access ones when the table
# has no row of their own (zoned, RBC, write-once, optical, OCRW).
_DISK_LIKE = frozenset((0x04, 0x07, 0x0E, 0x0F, 0x14))
# Preference when no device type is given: generic, then disk rows.
_DEFAULT_ORDER = ("ALL", "DISK_ZBC", "DISK")


def _default(entries: Tuple[Tuple[str, str], ...]) -> str:
    for key in _DEFAULT_ORDER:
        for entry_key, name in entries:
            if entry_key == key:
                return name
    return entries[0][1]


def opcode_name(opcode: int, device_type: Optional[int] = None) -> str:
    """The T10 name of an operation code, e.g. ``opcode_name(0x28)`` -> ``"Read(10)"``.

    Where the name depends on the device (01h is "Rezero Unit" generally but
    "Rewind" on tape), pass ``device_type`` (a PeripheralDeviceType or its
    int): a row for that type wins, then the direct-access row for
    disk-like types, then the generic (ALL) row.  Without a device type the
    generic name is given, else the direct-access one.  Codes the table
    lacks get "Variable length" (7Fh, SPC-5 4.2.5.3), "Vendor specific"
    (C0h-FFh, SPC-5 4.2.5.1) or "Unknown".
    """
    if isinstance(opcode, bool) or not isinstance(opcode, int) or not 0 <= opcode <= 0xFF:
        raise ValueError(f"operation code must be an int in 0..255, got {opcode!r}")
    entries = OPCODE_NAMES.get(opcode)
    if entries is None:
        if opcode == 0x7F:
            return "Variable length"
        if opcode >= 0xC0:
            return f"Vendor specific ({opcode:02X}h)"
        return f"Unknown ({opcode:02X}h)"
    if device_type is None:
        return _default(entries)
    pdt = int(device_type)
    for key, name in entries:
        if pdt in DEVICE_KEYS[key]:
            return name
    if pdt in _DISK_LIKE:
        for key, name in entries:
            if 0x00 in DEVICE_KEYS[key]:
                return name
    for key, name in entries:
        if key == "ALL":
            return name
    return _default(entries)
