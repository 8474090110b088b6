"""The data-loss safety policy: which commands may change or destroy data.

Pure: nothing here does I/O.  Every command falls in one of three classes
(:class:`Risk`), ordered from harmless to dangerous:

``READ``
    reads, or changes nothing a later read would see (INQUIRY, READ,
    TEST UNIT READY, MODE SENSE, START STOP UNIT...);
``DATA_CHANGING``
    changes stored data, settings or who may reach the logical unit, as far
    as the CDB and its data spell out (WRITE*, WRITE SAME, UNMAP, COMPARE
    AND WRITE, MODE SELECT, LOG SELECT, PERSISTENT RESERVE OUT, RESERVE,
    RELEASE...);
``IRREVERSIBLE``
    can destroy the whole medium or the device, reaches further than its
    CDB spells out, or does something sgpy cannot tell (FORMAT UNIT,
    SANITIZE, ERASE, WRITE BUFFER, ATA PASS-THROUGH, SECURITY PROTOCOL OUT,
    EXTENDED CDB, vendor-specific and unknown operation codes and service
    actions).

The knowledge is one table, :data:`MEANINGS`: for every operation code of
T10's operation code list (and 7Fh), the class of each of its meanings,
one per device type that gives it one; for codes whose service action
names the command, :data:`SERVICE_ACTION_RISK` gives the class of each
service action.  A few commands also depend on a CDB field (WRITE SAME's
NUMBER OF LOGICAL BLOCKS, SEND DIAGNOSTIC's PARAMETER LIST LENGTH...).

A command class states its own class through ``changes_data`` and
``irreversible`` (see :mod:`sgpy.cdb.base`); :func:`classify` never goes
below what the table says of the command's own meaning.  A
:class:`~sgpy.command.RawCommand` has no meaning of its own: it takes the
most dangerous meaning of its operation code over every device type.

A :class:`Policy` says how far a caller is willing to go;
:meth:`Policy.check` refuses anything beyond with
:class:`~sgpy.errors.UnsafeCommand` before the command reaches a device.
The same policy serves the library (``Channel.from_path(p,
read_only=True)`` or ``policy=``) and the command line
(``--allow-data-loss``, ``--allow-irreversible``).
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Dict, Optional, Tuple

import attrs

from sgpy._opcode_table import DEVICE_KEYS
from sgpy.constants import Direction
from sgpy.errors import EncodeError, UnsafeCommand

__all__ = [
    "Risk",
    "Policy",
    "READ_ONLY",
    "ALLOW_DATA_LOSS",
    "ALLOW_ALL",
    "MEANINGS",
    "SERVICE_ACTION_RISK",
    "VARIABLE_LENGTH_RISK",
    "OPCODE_RISK",
    "classify",
    "classify_cdb",
    "cdb_risk",
    "opcode_risk",
    "check",
    "check_channel",
]

# First vendor-specific operation code: groups 6 (C0h-DFh) and 7 (E0h-FFh)
# are vendor specific, SPC-5 4.2.5.1 table 39.
VENDOR_SPECIFIC_FIRST = 0xC0
# VARIABLE LENGTH CDB: the service action sits in bytes 8-9 (SPC-5 4.2.5.3).
VARIABLE_LENGTH = 0x7F


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
#: In :data:`MEANINGS`: this meaning's class depends on the service action
#: (:data:`SERVICE_ACTION_RISK`).
BY_SERVICE_ACTION: Optional[Risk] = None

#: operation code -> {device-type key -> class of that meaning}.  The keys
#: and rows are those of T10's operation code list (sgpy/_opcode_table.py,
#: the same device-type keys), plus 7Fh, which the list leaves out; a
#: RawCommand takes the most dangerous meaning of its code.  None means the
#: service action decides (:data:`SERVICE_ACTION_RISK`).
MEANINGS: Dict[int, Dict[str, Optional[Risk]]] = {
    0x00: {"ALL": _R},  # TEST UNIT READY (SPC-5)
    0x01: {"ALL": _R, "TAPE": _R},  # REZERO UNIT (SBC-2); REWIND (SSC-5): positioning only
    0x03: {"ALL": _R},  # REQUEST SENSE (SPC-5)
    # FORMAT UNIT (SBC-4), FORMAT MEDIUM (SSC-5), printer FORMAT: the whole medium.
    0x04: {"DISK_ZBC": _I, "TAPE": _I, "PRINTER": _I},
    0x05: {"TAPE": _R},  # READ BLOCK LIMITS (SSC-5)
    # REASSIGN BLOCKS (SBC-4): the old contents of the reassigned LBAs may be lost;
    # INITIALIZE ELEMENT STATUS (SMC-3): an inventory.
    0x07: {"DISK_ZBC": _D, "MCHANGER": _R},
    0x08: {"DISK_ZBC": _R, "PROCESSOR": _R},  # READ(6) (SBC-4); RECEIVE (SPC-2)
    0x0A: {"DISK_ZBC": _D, "PRINTER": _D, "PROCESSOR": _D},  # WRITE(6) (SBC-4); PRINT; SEND (SPC-2)
    # SEEK(6); SET CAPACITY (SSC-5) changes the capacity of the whole mounted
    # volume; SLEW AND PRINT moves paper.
    0x0B: {"ALL": _R, "TAPE": _I, "PRINTER": _D},
    0x0F: {"TAPE": _R},  # READ REVERSE(6) (SSC-5)
    0x10: {"TAPE": _D, "PRINTER": _D},  # WRITE FILEMARKS(6) (SSC-5); SYNCHRONIZE BUFFER (prints)
    0x11: {"TAPE": _R},  # SPACE(6) (SSC-5)
    0x12: {"ALL": _R},  # INQUIRY (SPC-5)
    0x13: {"TAPE": _R},  # VERIFY(6) (SSC-5)
    0x14: {"ALL": _R},  # RECOVER BUFFERED DATA (SSC-5)
    0x15: {"ALL": _D},  # MODE SELECT(6) (SPC-5): settings
    # RESERVE(6) (SPC-2): locks every other initiator out of a shared logical
    # unit; RESERVE ELEMENT (SMC).
    0x16: {"ALL": _D, "MCHANGER": _D},
    0x17: {"ALL": _D, "MCHANGER": _D},  # RELEASE(6) (SPC-2): ends a reservation others rely on
    0x18: {"ALL": _D},  # COPY (SPC-2): writes the destination
    0x19: {"ALL": _I},  # ERASE(6) (SSC-5): with LONG, the whole rest of the medium
    0x1A: {"ALL": _R},  # MODE SENSE(6) (SPC-5)
    # START STOP UNIT (SBC-4), LOAD UNLOAD (SSC-5, ADC), STOP PRINT: no data changes.
    0x1B: {"ALL": _R, "TAPE": _R, "ADC": _R, "PRINTER": _R},
    0x1C: {"ALL": _R},  # RECEIVE DIAGNOSTIC RESULTS (SPC-5)
    0x1D: {"ALL": _R},  # SEND DIAGNOSTIC (SPC-5): data-changing by its fields (_send_diagnostic)
    0x1E: {"ALL": _R},  # PREVENT ALLOW MEDIUM REMOVAL (SPC-5)
    0x23: {"MMC": _R},  # READ FORMAT CAPACITIES (MMC-6)
    0x24: {"ALL": _D},  # SET WINDOW (SCSI-2 scanners): settings
    0x25: {"ALL": _R, "OCRW": _R},  # READ CAPACITY(10) (SBC-4); READ CARD CAPACITY
    0x28: {"ALL": _R},  # READ(10) (SBC-4)
    0x29: {"ALL": _R},  # READ GENERATION (SBC-2)
    0x2A: {"ALL": _D},  # WRITE(10) (SBC-4)
    0x2B: {"ALL": _R, "TAPE": _R, "MCHANGER": _R},  # SEEK(10); LOCATE(10); POSITION TO ELEMENT
    0x2C: {"ALL": _I},  # ERASE(10) (MMC, SBC-2 optical): with ERA, the whole medium
    0x2D: {"OPTICAL": _R},  # READ UPDATED BLOCK (SBC-2)
    0x2E: {"ALL": _D},  # WRITE AND VERIFY(10) (SBC-4)
    0x2F: {"ALL": _R},  # VERIFY(10) (SBC-4)
    0x30: {"ALL": _R},  # SEARCH DATA HIGH(10) (SBC-1)
    0x31: {"ALL": _R},  # SEARCH DATA EQUAL(10) (SBC-1)
    0x32: {"ALL": _R},  # SEARCH DATA LOW(10) (SBC-1)
    0x33: {"ALL": _D},  # SET LIMITS(10) (SBC-1): later commands outside the limits fail
    0x34: {"ALL": _R, "TAPE": _R},  # PRE-FETCH(10) (SBC-4); READ POSITION (SSC-5)
    0x35: {"ALL": _R},  # SYNCHRONIZE CACHE(10) (SBC-4)
    0x36: {"ALL": _R},  # LOCK UNLOCK CACHE(10) (SBC-2): cache residency only
    0x37: {"MCHANGER": _R, "ALL": _R},  # INITIALIZE ELEMENT STATUS WITH RANGE; READ DEFECT DATA(10)
    0x38: {"DISK_ZBC": _I, "OCRW": _R},  # FORMAT WITH PRESET (SBC-4); MEDIUM SCAN
    0x39: {"ALL": _R},  # COMPARE (SPC-2)
    0x3A: {"ALL": _D},  # COPY AND VERIFY (SPC-2): writes the destination
    0x3B: {"ALL": _I},  # WRITE BUFFER (SPC-5): microcode download
    0x3C: {"ALL": _R},  # READ BUFFER(10) (SPC-5)
    0x3D: {"OPTICAL": _D},  # UPDATE BLOCK (SBC-2)
    0x3E: {"ALL": _R},  # READ LONG(10) (SBC-4)
    0x3F: {"ALL": _D},  # WRITE LONG(10) (SBC-4): can mark a block uncorrectable
    0x40: {"ALL": _D},  # CHANGE DEFINITION (SPC-2): the operating definition
    0x41: {"ALL": _D},  # WRITE SAME(10) (SBC-4); irreversible by its fields (_write_same)
    0x42: {"DISK_ZBC": _D, "MMC": _R},  # UNMAP (SBC-4); READ SUB-CHANNEL (MMC)
    0x43: {"MMC": _R},  # READ TOC/PMA/ATIP (MMC-6)
    0x44: {"ALL": _R},  # REPORT DENSITY SUPPORT (SSC-5)
    0x45: {"MMC": _R},  # PLAY AUDIO(10) (MMC)
    0x46: {"MMC": _R},  # GET CONFIGURATION (MMC-6)
    0x47: {"MMC": _R},  # PLAY AUDIO MSF (MMC)
    0x48: {"ALL": BY_SERVICE_ACTION},  # SANITIZE (SBC-4)
    0x4A: {"MMC": _R},  # GET EVENT STATUS NOTIFICATION (MMC-6)
    0x4B: {"MMC": _R},  # PAUSE/RESUME (MMC)
    0x4C: {"ALL": _D},  # LOG SELECT (SPC-5): can reset every log parameter
    0x4D: {"ALL": _R},  # LOG SENSE (SPC-5)
    0x4E: {"MMC": _R},  # STOP PLAY/SCAN (MMC)
    0x50: {"DISK": _D},  # XDWRITE(10) (SBC-3)
    0x51: {"DISK": _D, "MMC": _R},  # XPWRITE(10) (SBC-3); READ DISC INFORMATION (MMC-6)
    0x52: {"DISK": _R, "MMC": _R},  # XDREAD(10) (SBC-3); READ TRACK INFORMATION (MMC-6)
    0x53: {"DISK": _D},  # XDWRITEREAD(10) (SBC-3)
    0x54: {"MMC": _D},  # SEND OPC INFORMATION (MMC-6): may calibrate on the disc
    0x55: {"ALL": _D},  # MODE SELECT(10) (SPC-5)
    0x56: {"ALL": _D, "MCHANGER": _D},  # RESERVE(10) (SPC-2), RESERVE ELEMENT(10): as 16h
    0x57: {"ALL": _D, "MCHANGER": _D},  # RELEASE(10) (SPC-2), RELEASE ELEMENT(10): as 17h
    0x58: {"MMC": _D},  # REPAIR TRACK (MMC): writes on the disc
    0x5A: {"ALL": _R},  # MODE SENSE(10) (SPC-5)
    # CLOSE TRACK/SESSION (MMC-6): closing a session or finalizing a
    # write-once disc cannot be undone.
    0x5B: {"MMC": _I},
    0x5C: {"MMC": _R},  # READ BUFFER CAPACITY (MMC-6)
    0x5D: {"MMC": _D},  # SEND CUE SHEET (MMC-6): sets up a recording
    0x5E: {"ALL": BY_SERVICE_ACTION},  # PERSISTENT RESERVE IN (SPC-5)
    0x5F: {"ALL": BY_SERVICE_ACTION},  # PERSISTENT RESERVE OUT (SPC-5)
    # EXTENDED CDB (SPC-4): carries another CDB, FORMAT UNIT as well as READ;
    # sgpy does not look inside.
    0x7E: {"ALL": _I},
    0x7F: {"ALL": BY_SERVICE_ACTION},  # VARIABLE LENGTH CDB (SPC-5 4.2.5.3)
    0x80: {"DISK": _D, "TAPE": _D},  # XDWRITE EXTENDED(16) (SBC-3); WRITE FILEMARKS(16) (SSC-5)
    0x81: {"DISK": _D, "TAPE": _R},  # REBUILD(16) (SBC-2): writes rebuilt data; READ REVERSE(16)
    0x82: {"DISK": _R},  # REGENERATE(16) (SBC-2): returns regenerated data
    0x83: {"ALL": BY_SERVICE_ACTION},  # THIRD-PARTY COPY OUT (SPC-5)
    0x84: {"ALL": BY_SERVICE_ACTION},  # THIRD-PARTY COPY IN (SPC-5)
    0x85: {"ALL": _I},  # ATA PASS-THROUGH(16) (SAT-4): any ATA command
    # ACCESS CONTROL IN (SPC-3): sgpy does not tell its service actions apart,
    # and REQUEST PROXY TOKEN hands out access.
    0x86: {"ALL": _D},
    0x87: {"ALL": _D},  # ACCESS CONTROL OUT (SPC-3): who may reach which logical unit
    0x88: {"ALL": _R},  # READ(16) (SBC-4)
    0x89: {"ALL": _D},  # COMPARE AND WRITE (SBC-4)
    0x8A: {"ALL": _D},  # WRITE(16) (SBC-4)
    0x8B: {"DISK": _D},  # ORWRITE(16) (SBC-4)
    0x8C: {"ALL": BY_SERVICE_ACTION},  # READ ATTRIBUTE (SPC-5)
    0x8D: {"ALL": _D},  # WRITE ATTRIBUTE (SPC-5): no service action
    0x8E: {"ALL": _D},  # WRITE AND VERIFY(16) (SBC-4)
    0x8F: {"ALL": _R},  # VERIFY(16) (SBC-4)
    0x90: {"ALL": _R},  # PRE-FETCH(16) (SBC-4)
    0x91: {"ALL": _R, "TAPE": _R},  # SYNCHRONIZE CACHE(16) (SBC-4); SPACE(16) (SSC-5)
    0x92: {"DISK": _R, "TAPE": _R},  # LOCK UNLOCK CACHE(16) (SBC-2); LOCATE(16) (SSC-5)
    # WRITE SAME(16) (SBC-4; irreversible by its fields, _write_same); ERASE(16)
    # (SSC-5): with LONG, the whole rest of the medium, like ERASE(6).
    0x93: {"ALL": _D, "TAPE": _I},
    0x94: {"DISK_ZBC": BY_SERVICE_ACTION},  # ZBC OUT (ZBC-2)
    0x95: {"DISK_ZBC": BY_SERVICE_ACTION},  # ZBC IN (ZBC-2)
    0x96: {"ALL": _I},  # WRITE BUFFER(16) (SPC-5)
    0x9A: {"ALL": _D},  # WRITE STREAM(16) (SBC-4)
    0x9B: {"ALL": _R},  # READ BUFFER(16) (SPC-5)
    0x9C: {"ALL": _D},  # WRITE ATOMIC(16) (SBC-4)
    0x9D: {"ALL": BY_SERVICE_ACTION},  # SERVICE ACTION BIDIRECTIONAL (SPC-5): none known
    0x9E: {"ALL": BY_SERVICE_ACTION},  # SERVICE ACTION IN(16) (SPC-5, SBC-4)
    0x9F: {"ALL": BY_SERVICE_ACTION},  # SERVICE ACTION OUT(16) (SPC-5, SBC-4)
    0xA0: {"ALL": _R},  # REPORT LUNS (SPC-5)
    0xA1: {"ALL": _I, "MMC": _I},  # ATA PASS-THROUGH(12) (SAT-4); BLANK (MMC-6): erases the disc
    0xA2: {"ALL": _R},  # SECURITY PROTOCOL IN (SPC-5)
    # MAINTENANCE IN (SPC-5); SEND KEY (MMC-6): data-changing when it sends a
    # key, e.g. a region change, which a drive allows only a few times (_send_key).
    0xA3: {"ALL": BY_SERVICE_ACTION, "MMC": _R},
    0xA4: {"ALL": BY_SERVICE_ACTION, "MMC": _R},  # MAINTENANCE OUT (SPC-5); REPORT KEY (MMC-6)
    0xA5: {"ALL": _R, "MMC": _R},  # MOVE MEDIUM (SMC-3); PLAY AUDIO(12) (MMC)
    0xA6: {"MCHANGER": _R, "MMC": _R},  # EXCHANGE MEDIUM (SMC-3); LOAD/UNLOAD MEDIUM (MMC-6)
    0xA7: {"OPTICAL": _R, "MMC": _R},  # MOVE MEDIUM ATTACHED (SMC-3); SET READ AHEAD (MMC-6)
    0xA8: {"ALL": _R},  # READ(12) (SBC-4)
    0xA9: {"ALL": BY_SERVICE_ACTION},  # SERVICE ACTION OUT(12) (SPC-5)
    0xAA: {"ALL": _D},  # WRITE(12) (SBC-4)
    0xAB: {"ALL": BY_SERVICE_ACTION},  # SERVICE ACTION IN(12) (SPC-5)
    0xAC: {"OPTICAL": _I, "MMC": _R},  # ERASE(12) (SBC-2 optical), as ERASE(10); GET PERFORMANCE (MMC-6)
    0xAD: {"MMC": _R},  # READ DVD/BD STRUCTURE (MMC-6)
    0xAE: {"ALL": _D},  # WRITE AND VERIFY(12) (SBC-3)
    0xAF: {"ALL": _R},  # VERIFY(12) (SBC-3)
    0xB0: {"DISK": _R},  # SEARCH DATA HIGH(12) (SBC-1)
    0xB1: {"DISK": _R, "MCHANGER": _R},  # SEARCH DATA EQUAL(12); OPEN/CLOSE IMPORT/EXPORT ELEMENT
    0xB2: {"DISK": _R},  # SEARCH DATA LOW(12) (SBC-1)
    0xB3: {"DISK": _D},  # SET LIMITS(12) (SBC-1), as SET LIMITS(10)
    0xB4: {"ALL": _R},  # READ ELEMENT STATUS ATTACHED (SMC-3)
    # REQUEST VOLUME ELEMENT ADDRESS (SMC-3); SECURITY PROTOCOL OUT (SPC-5):
    # through it a device can be locked or cryptographically erased as a
    # whole (SAT-4 maps security protocol EFh to the ATA security feature
    # set, SECURITY ERASE UNIT included).
    0xB5: {"MCHANGER": _R, "ALL": _I},
    0xB6: {"MCHANGER": _D, "MMC": _D},  # SEND VOLUME TAG (SMC-3); SET STREAMING (MMC-6)
    0xB7: {"ALL": _R},  # READ DEFECT DATA(12) (SBC-4)
    0xB8: {"ALL": _R},  # READ ELEMENT STATUS (SMC-3)
    0xB9: {"MMC": _R},  # READ CD MSF (MMC-6)
    0xBA: {"MMC": _R, "ALL": _R},  # SCAN (MMC); REDUNDANCY GROUP IN (SCC-2)
    # SET CD SPEED (MMC-6); REDUNDANCY GROUP OUT (SCC-2): reconfigures the
    # storage array, which can take the data it held with it.
    0xBB: {"ALL": _I, "MMC": _D},
    0xBC: {"ALL": _R},  # SPARE IN (SCC-2)
    0xBD: {"ALL": _I, "MMC": _R},  # SPARE OUT (SCC-2), as 0xBB; MECHANISM STATUS (MMC-6)
    0xBE: {"MMC": _R, "ALL": _R},  # READ CD (MMC-6); VOLUME SET IN (SCC-2)
    0xBF: {"MMC": _D, "ALL": _I},  # SEND DVD/BD STRUCTURE (MMC-6); VOLUME SET OUT (SCC-2), as 0xBB
}

#: VARIABLE LENGTH CDB (7Fh) service actions (bytes 8-9, SPC-5 4.2.5.3)
#: sgpy knows.  Any other, the OSD commands among them (FORMAT OSD), is
#: irreversible.
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
    0x000D: _D,  # WRITE SAME(32) (SBC-4); irreversible by its fields (_write_same)
    0x000E: _D,  # ORWRITE(32) (SBC-4)
    0x000F: _D,  # WRITE ATOMIC(32) (SBC-4)
    0x0010: _D,  # WRITE STREAM(32) (SBC-4)
    0x0011: _D,  # WRITE SCATTERED(32) (SBC-4)
    0x0012: _R,  # GET LBA STATUS(32) (SBC-4)
    0x1FF0: _I,  # ATA PASS-THROUGH(32) (SAT-4): any ATA command, as (12)/(16) do
}

#: operation code -> {service action -> class} for the meanings of
#: :data:`MEANINGS` marked None.  The service action is byte 1 bits 4-0
#: (SPC-5 4.2.5.2), bytes 8-9 for 7Fh.  A service action not listed, or a
#: CDB too short to hold one, is irreversible: sgpy cannot tell what it does.
SERVICE_ACTION_RISK: Dict[int, Dict[int, Risk]] = {
    # SANITIZE (SBC-4): OVERWRITE, BLOCK ERASE, CRYPTOGRAPHIC ERASE, EXIT FAILURE MODE.
    0x48: {0x01: _I, 0x02: _I, 0x03: _I, 0x1F: _I},
    # PERSISTENT RESERVE IN (SPC-5): READ KEYS, READ RESERVATION, REPORT
    # CAPABILITIES, READ FULL STATUS.
    0x5E: {0x00: _R, 0x01: _R, 0x02: _R, 0x03: _R},
    # PERSISTENT RESERVE OUT (SPC-5): REGISTER ... REPLACE LOST RESERVATION
    # change who may reach the logical unit.
    0x5F: {sa: _D for sa in range(0x00, 0x09)},
    VARIABLE_LENGTH: VARIABLE_LENGTH_RISK,
    # THIRD-PARTY COPY OUT (SPC-5): EXTENDED COPY(LID1), EXTENDED COPY, POPULATE
    # TOKEN, WRITE USING TOKEN, SET TAPE STREAM MIRRORING (SSC-5), COPY OPERATION ABORT.
    0x83: {0x00: _D, 0x01: _D, 0x10: _D, 0x11: _D, 0x16: _D, 0x1C: _D},
    # THIRD-PARTY COPY IN (SPC-5): the RECEIVE COPY ... and ROD token reports,
    # REPORT TAPE STREAM MIRRORING (SSC-5).
    0x84: {sa: _R for sa in (0x00, 0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x16)},
    # READ ATTRIBUTE (SPC-5): ATTRIBUTE VALUES, ATTRIBUTE LIST, LOGICAL VOLUME
    # LIST, PARTITION LIST, SUPPORTED ATTRIBUTES.
    0x8C: {sa: _R for sa in (0x00, 0x01, 0x02, 0x03, 0x05)},
    # ZBC OUT (ZBC-2): CLOSE ZONE and OPEN ZONE change zone conditions only;
    # FINISH ZONE, RESET WRITE POINTER (irreversible with ALL, _reset_write_pointer)
    # and SEQUENTIALIZE ZONE change what the zone reads.
    0x94: {0x01: _R, 0x02: _D, 0x03: _R, 0x04: _D, 0x10: _D},
    # ZBC IN (ZBC-2): REPORT ZONES, REPORT REALMS, REPORT ZONE DOMAINS, ZONE
    # QUERY; ZONE ACTIVATE changes the zone type, and the data, of whole realms.
    0x95: {0x00: _R, 0x06: _R, 0x07: _R, 0x08: _I, 0x09: _R},
    # SERVICE ACTION BIDIRECTIONAL (SPC-5): no service action is defined.
    0x9D: {},
    # SERVICE ACTION IN(16): RECEIVE BINDING REPORT (SPC-5), READ CAPACITY(16),
    # READ LONG(16), GET LBA STATUS, REPORT REFERRALS, GET STREAM STATUS, GET
    # PHYSICAL ELEMENT STATUS read; STREAM CONTROL and BACKGROUND CONTROL change
    # device state; REMOVE ELEMENT AND TRUNCATE, RESTORE ELEMENTS AND REBUILD
    # (SBC-4) and REMOVE ELEMENT AND MODIFY ZONES (ZBC-2) change the capacity
    # and lose the data of the medium.
    0x9E: {
        0x0F: _R, 0x10: _R, 0x11: _R, 0x12: _R, 0x13: _R, 0x14: _D, 0x15: _D,
        0x16: _R, 0x17: _R, 0x18: _I, 0x19: _I, 0x1A: _I,
    },  # fmt: skip
    # SERVICE ACTION OUT(16): TEST BIND, PREPARE BIND REPORT, SET AFFILIATION,
    # BIND, UNBIND (SPC-5: logical unit binding), WRITE LONG(16), WRITE
    # SCATTERED(16) (SBC-4), RESET WRITE POINTER (ZBC draft).
    0x9F: {sa: _D for sa in (0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x11, 0x12, 0x14)},
    # MAINTENANCE IN (SPC-5, SCC-2, ADC-4, SBC-4, SSC-5): reports only.
    # 1Fh is vendor specific, hence unknown.
    0xA3: {sa: _R for sa in (*range(0x00, 0x11), 0x1D, 0x1E)},
    # MAINTENANCE OUT (SPC-5): SET IDENTIFYING INFORMATION, SET TARGET PORT
    # GROUPS, CHANGE ALIASES, REMOVE I_T NEXUS, SET PRIORITY, SET TIMESTAMP,
    # MANAGEMENT PROTOCOL OUT; GENERATE RECOMMENDED ACCESS ORDER and WRITE
    # DYNAMIC RUNTIME ATTRIBUTE (SSC-5).  SCC-2's storage-array service
    # actions and vendor-specific 1Fh stay unknown.
    0xA4: {sa: _D for sa in (0x06, 0x0A, 0x0B, 0x0C, 0x0E, 0x0F, 0x10, 0x1D, 0x1E)},
    # SERVICE ACTION OUT(12) (SPC-5): none sgpy knows.
    0xA9: {},
    # SERVICE ACTION IN(12) (SPC-5): READ MEDIA SERIAL NUMBER.
    0xAB: {0x01: _R},
}

# -- rules that read CDB fields ----------------------------------------------------
# Each takes the CDB and whether data goes to the device, and returns the
# class of that one command.  A field the CDB is too short to hold reads as
# its most dangerous value.


def _field(cdb: bytes, start: int, stop: int) -> Optional[int]:
    """Bytes ``start:stop`` of the CDB as a big-endian number, None when the CDB is shorter."""
    return int.from_bytes(cdb[start:stop], "big") if len(cdb) >= stop else None


def _send_diagnostic(cdb: bytes, data_out: bool) -> Risk:
    """SEND DIAGNOSTIC (SPC-5): a self-test reads; anything else may change the device.

    A parameter list (PARAMETER LIST LENGTH, bytes 3-4, not zero) sends
    diagnostic pages, which can set what the device does (an enclosure's
    control page, for one); UNITOFFL (byte 1 bit 0) permits writes to the
    medium and DEVOFFL (bit 1) changes to reservations and logs.
    """
    flags, length = _field(cdb, 1, 2), _field(cdb, 3, 5)
    if flags is None or length is None or flags & 0x03 or length:
        return _D
    return _R


def _write_same(start: int, stop: int) -> Callable[[bytes, bool], Risk]:
    """WRITE SAME (SBC-4): NUMBER OF LOGICAL BLOCKS (bytes ``start:stop``) zero is irreversible.

    With WSNZ zero, a count of zero writes from the LBA to the last LBA of
    the medium: one block of data reaches the whole disk.
    """

    def rule(cdb: bytes, data_out: bool) -> Risk:
        count = _field(cdb, start, stop)
        return _I if count is None or count == 0 else _D

    return rule


def _reset_write_pointer(cdb: bytes, data_out: bool) -> Risk:
    """RESET WRITE POINTER (ZBC-2): with ALL (byte 14 bit 0) every zone of the medium is emptied."""
    flags = _field(cdb, 14, 15)
    return _I if flags is None or flags & 0x01 else _D


def _send_key(cdb: bytes, data_out: bool) -> Risk:
    """SEND KEY (MMC-6, the A3h meaning on MMC devices): data-changing when it sends a key."""
    return _D if data_out else _R


#: (operation code, device-type key, service action or None) -> rule.
_FIELD_RULES: Dict[Tuple[int, str, Optional[int]], Callable[[bytes, bool], Risk]] = {
    (0x1D, "ALL", None): _send_diagnostic,
    (0x41, "ALL", None): _write_same(7, 9),
    (0x93, "ALL", None): _write_same(10, 14),
    (VARIABLE_LENGTH, "ALL", 0x0D): _write_same(28, 32),
    (0x94, "DISK_ZBC", 0x04): _reset_write_pointer,
    (0xA3, "MMC", None): _send_key,
}


def _service_action(cdb: bytes) -> Optional[int]:
    """The service action field of a CDB whose code has one, None when the CDB is too short."""
    if cdb[0] == VARIABLE_LENGTH:
        return _field(cdb, 8, 10)
    return cdb[1] & 0x1F if len(cdb) >= 2 else None


def _rule(opcode: int, key: str, sa: Optional[int]) -> Optional[Callable[[bytes, bool], Risk]]:
    """The field rule of one meaning (and service action), if it has one."""
    return _FIELD_RULES.get((opcode, key, sa if MEANINGS[opcode][key] is None else None))


def _meaning_risk(opcode: int, key: str, sa: Optional[int], cdb: Optional[bytes], data_out: bool) -> Risk:
    """The class of one meaning of ``opcode``.

    ``cdb`` None leaves the CDB fields out (a command class as such); an
    empty ``cdb`` makes every field read as its most dangerous value.
    """
    static = MEANINGS[opcode][key]
    if static is None:
        # The service action decides; unknown or absent: irreversible.
        static = SERVICE_ACTION_RISK[opcode].get(sa, _I) if sa is not None else _I
    rule = _rule(opcode, key, sa)
    if rule is None or cdb is None:
        return static
    return max(static, rule(cdb, data_out))


def opcode_risk(opcode: int, service_action: Optional[int] = None) -> Risk:
    """What sgpy can say of an operation code (and service action) without the rest of the CDB.

    The most dangerous meaning over every device type, every value of the
    CDB fields that matter and, without ``service_action``, every service
    action.  Vendor-specific codes (C0h-FFh) and codes T10's list does not
    have are irreversible, as is an unknown service action.
    """
    if isinstance(opcode, bool) or not isinstance(opcode, int) or not 0 <= opcode <= 0xFF:
        raise ValueError(f"operation code must be an int in 0..255, got {opcode!r}")
    if opcode >= VENDOR_SPECIFIC_FIRST or opcode not in MEANINGS:
        return _I
    # service_action None with a meaning that has one: unknown, hence irreversible.
    return max(_meaning_risk(opcode, key, service_action, b"", True) for key in MEANINGS[opcode])


#: operation code -> :func:`opcode_risk` of the code alone, for every code of
#: :data:`MEANINGS`; any other code is irreversible.
OPCODE_RISK: Dict[int, Risk] = {code: opcode_risk(code) for code in MEANINGS}


def cdb_risk(cdb: bytes, direction: Direction = Direction.NONE) -> Risk:
    """The class of CDB bytes whose device type is not known: the most dangerous meaning.

    Vendor-specific and unknown operation codes, unknown service actions
    and CDBs too short for the fields that decide are irreversible.
    """
    if not cdb or cdb[0] >= VENDOR_SPECIFIC_FIRST or cdb[0] not in MEANINGS:
        return _I
    opcode = cdb[0]
    sa = _service_action(cdb) if opcode in SERVICE_ACTION_RISK else None
    data_out = direction is Direction.TO_DEVICE
    return max(_meaning_risk(opcode, key, sa, cdb, data_out) for key in MEANINGS[opcode])


def _own_meaning(opcode: int) -> Optional[str]:
    """The device-type key of a command class's meaning: the direct-access row, else the generic one.

    sgpy's command classes are those of SPC-5, SBC-4, ZBC-2 and SAT-4, for
    direct-access devices (peripheral device type 0).
    """
    rows = MEANINGS.get(opcode)
    if not rows:
        return None
    for key in rows:
        if 0x00 in DEVICE_KEYS[key]:
            return key
    return "ALL" if "ALL" in rows else None


_WHAT = {
    Risk.DATA_CHANGING: "changes data on the device",
    Risk.IRREVERSIBLE: "can irreversibly destroy data (or the device)",
}


def _class_risk(cls_or_cmd: Any) -> Risk:
    """The risk read from ``changes_data`` / ``irreversible``."""
    if cls_or_cmd.irreversible:
        return Risk.IRREVERSIBLE
    if cls_or_cmd.changes_data:
        return Risk.DATA_CHANGING
    return Risk.READ


def _is_raw(cmd: Any) -> bool:
    """True for a RawCommand instance: CDB bytes with no meaning of their own."""
    return not isinstance(cmd, type) and getattr(cmd, "name", None) == "RawCommand"


def classify(cmd: Any) -> Risk:
    """The :class:`Risk` of a command (an instance or a command class).

    A RawCommand takes the most dangerous meaning of its CDB over every
    device type (:func:`cdb_risk`).  A command class takes the more
    dangerous of its own answer (``changes_data``, ``irreversible``) and
    what :data:`MEANINGS` and :data:`SERVICE_ACTION_RISK` say of its
    meaning; an instance also what its CDB fields say (WRITE SAME of the
    whole medium, SEND DIAGNOSTIC with a parameter list...).
    """
    if _is_raw(cmd):
        return cdb_risk(bytes(cmd.cdb), cmd.direction)
    risk = _class_risk(cmd)
    opcode = getattr(cmd, "opcode", None)
    if not isinstance(opcode, int):
        return risk
    key = _own_meaning(opcode)
    if key is None:
        return risk
    sa = cmd.service_action
    cdb: Optional[bytes] = None
    if not isinstance(cmd, type) and _rule(opcode, key, sa) is not None:
        try:
            cdb = bytes(cmd.cdb)
        except EncodeError:
            cdb = b""  # not resolved yet: every field reads as its most dangerous value
    return max(risk, _meaning_risk(opcode, key, sa, cdb, cmd.direction is Direction.TO_DEVICE))


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
