"""Commands for all device types, from SPC-5 (SCSI Primary Commands - 5).

Each class lays out its CDB as the SPC-5 table for that command draws it;
bits SPC-5 marks reserved or obsolete are left out (encoded as zero,
reported when decoding) unless noted.  RESERVE/RELEASE come from SPC-2,
the last standard that defined them.
"""

from __future__ import annotations

from typing import ClassVar, Optional

from sgpy._fields import REQUIRED, FieldSpec, field
from sgpy.cdb.base import AllocationIn, NoData, ParameterOut, base, command, nbytes
from sgpy.errors import EncodeError

#: Sets a field of a frozen command during its own construction.
_setattr = object.__setattr__

__all__ = [
    "TestUnitReady",
    "RequestSense",
    "Inquiry",
    "ModeSelect6",
    "ModeSelect10",
    "ModeSense6",
    "ModeSense10",
    "LogSelect",
    "LogSense",
    "ReportLuns",
    "ReportSupportedOperationCodes",
    "ReportSupportedTaskManagementFunctions",
    "ReportTargetPortGroups",
    "Reserve6",
    "Release6",
    "Reserve10",
    "Release10",
    "PersistentReserveInReadKeys",
    "PersistentReserveInReadReservation",
    "PersistentReserveInReportCapabilities",
    "PersistentReserveInReadFullStatus",
    "PersistentReserveOutRegister",
    "PersistentReserveOutReserve",
    "PersistentReserveOutRelease",
    "PersistentReserveOutClear",
    "PersistentReserveOutPreempt",
    "PersistentReserveOutPreemptAndAbort",
    "PersistentReserveOutRegisterAndIgnoreExistingKey",
    "PersistentReserveOutRegisterAndMove",
    "PersistentReserveOutReplaceLostReservation",
    "SendDiagnostic",
    "ReceiveDiagnosticResults",
    "ReadBuffer10",
    "WriteBuffer",
    "SecurityProtocolIn",
    "SecurityProtocolOut",
]

# Service action in byte 1 bits 4-0, as in every SPC-5 command family that
# shares an operation code (MAINTENANCE IN, PERSISTENT RESERVE IN/OUT...).
SA_BYTE1 = FieldSpec(byte=1, bit=4, width=5, name="service_action")


@command
class TestUnitReady(NoData):
    """TEST UNIT READY (00h, SPC-5): is the logical unit ready for medium access?"""

    __test__ = False  # not a pytest test class, whatever its name says
    opcode = 0x00
    cdb_length = 6
    standard = "SPC-5"
    # bytes 1-4 reserved
    control = field(5)


@command
class RequestSense(AllocationIn):
    """REQUEST SENSE (03h, SPC-5): fetch sense data (DESC asks for descriptor format)."""

    opcode = 0x03
    cdb_length = 6
    standard = "SPC-5"
    desc = field(1, 0, 1, doc="descriptor format sense data")
    # bytes 2-3 reserved
    allocation_length = field(4, default=252, doc="252 is the largest sense SPC-5 defines")
    control = field(5)


@command
class Inquiry(AllocationIn):
    """INQUIRY (12h, SPC-5): standard data, or the VPD page ``page_code`` when EVPD is set."""

    opcode = 0x12
    cdb_length = 6
    standard = "SPC-5"
    # byte 1 bit 1 is the obsolete CMDDT
    evpd = field(1, 0, 1, doc="enable vital product data")
    page_code = field(2)
    allocation_length = field(3, width=16, default=96)
    control = field(5)


@command
class ModeSelect6(ParameterOut):
    """MODE SELECT(6) (15h, SPC-5): send mode parameters; ``data`` is the parameter list."""

    opcode = 0x15
    cdb_length = 6
    standard = "SPC-5"
    changes_data = True
    pf = field(1, 4, 1, doc="page format")
    sp = field(1, 0, 1, doc="save pages")
    parameter_list_length = field(4, default=None)
    control = field(5)


@command
class ModeSelect10(ParameterOut):
    """MODE SELECT(10) (55h, SPC-5): send mode parameters with the 8-byte header."""

    opcode = 0x55
    cdb_length = 10
    standard = "SPC-5"
    changes_data = True
    pf = field(1, 4, 1, doc="page format")
    sp = field(1, 0, 1, doc="save pages")
    parameter_list_length = field(7, width=16, default=None)
    control = field(9)


@command
class ModeSense6(AllocationIn):
    """MODE SENSE(6) (1Ah, SPC-5): read a mode page (PC: 0 current, 1 changeable, 2 default, 3 saved)."""

    opcode = 0x1A
    cdb_length = 6
    standard = "SPC-5"
    dbd = field(1, 3, 1, doc="disable block descriptors")
    pc = field(2, 7, 2, doc="page control")
    page_code = field(2, 5, 6)
    subpage_code = field(3)
    allocation_length = field(4, default=252)
    control = field(5)


@command
class ModeSense10(AllocationIn):
    """MODE SENSE(10) (5Ah, SPC-5): read mode pages with the 8-byte header (LLBAA allows long LBAs)."""

    opcode = 0x5A
    cdb_length = 10
    standard = "SPC-5"
    llbaa = field(1, 4, 1, doc="long LBA accepted")
    dbd = field(1, 3, 1, doc="disable block descriptors")
    pc = field(2, 7, 2, doc="page control")
    page_code = field(2, 5, 6)
    subpage_code = field(3)
    # bytes 4-6 reserved
    allocation_length = field(7, width=16, default=4096)
    control = field(9)


@command
class LogSelect(ParameterOut):
    """LOG SELECT (4Ch, SPC-5): send log parameters, or reset them with PCR."""

    opcode = 0x4C
    cdb_length = 10
    standard = "SPC-5"
    changes_data = True
    pcr = field(1, 1, 1, doc="parameter code reset")
    sp = field(1, 0, 1, doc="save parameters")
    pc = field(2, 7, 2, doc="page control")
    page_code = field(2, 5, 6)
    subpage_code = field(3)
    # bytes 4-6 reserved
    parameter_list_length = field(7, width=16, default=None)
    control = field(9)


@command
class LogSense(AllocationIn):
    """LOG SENSE (4Dh, SPC-5): read log page ``page_code``/``subpage_code`` from ``parameter_pointer``."""

    opcode = 0x4D
    cdb_length = 10
    standard = "SPC-5"
    ppc = field(1, 1, 1, doc="parameter pointer control (SPC-4; obsolete in SPC-5)")
    sp = field(1, 0, 1, doc="save parameters")
    pc = field(2, 7, 2, doc="page control")
    page_code = field(2, 5, 6)
    subpage_code = field(3)
    # byte 4 reserved
    parameter_pointer = field(5, width=16)
    allocation_length = field(7, width=16, default=4096)
    control = field(9)


@command
class ReportLuns(AllocationIn):
    """REPORT LUNS (A0h, SPC-5): list the logical units (SELECT REPORT chooses which)."""

    opcode = 0xA0
    cdb_length = 12
    standard = "SPC-5"
    # byte 1 reserved
    select_report = field(2)
    # bytes 3-5 reserved
    allocation_length = field(6, width=32, default=4096, doc="at least 16 (SPC-5)")
    # byte 10 reserved
    control = field(11)


@base
class _MaintenanceIn(AllocationIn):
    """MAINTENANCE IN (A3h) family: the service action sits in byte 1 bits 4-0."""

    opcode = 0xA3
    cdb_length = 12
    standard = "SPC-5"
    _sa_spec = SA_BYTE1


@command
class ReportTargetPortGroups(_MaintenanceIn):
    """REPORT TARGET PORT GROUPS (A3h/0Ah, SPC-5): ALUA target port group states."""

    service_action = 0x0A
    parameter_data_format = field(1, 7, 3)
    # bytes 2-5 reserved
    allocation_length = field(6, width=32, default=4096)
    # byte 10 reserved
    control = field(11)


@command
class ReportSupportedOperationCodes(_MaintenanceIn):
    """REPORT SUPPORTED OPERATION CODES (A3h/0Ch, SPC-5): which commands the device supports."""

    service_action = 0x0C
    rctd = field(2, 7, 1, doc="return command timeouts descriptor")
    reporting_options = field(2, 2, 3)
    requested_operation_code = field(3)
    requested_service_action = field(4, width=16)
    allocation_length = field(6, width=32, default=8192)
    # byte 10 reserved
    control = field(11)

    @classmethod
    def one_command(cls, opcode: int, service_action: Optional[int] = None, *, rctd: bool = False,
                    allocation_length: int = 512) -> "ReportSupportedOperationCodes":
        """The question about one command (SPC-5 6.35.2, table 309): REPORTING OPTIONS 001b for an
        opcode alone (the device refuses it for an opcode that has service actions), 010b for an
        opcode and its service action (refused for one that has none).  The answer is
        :class:`sgpy.responses.OneCommandSupport`: 4 bytes, the CDB usage map (at most 260 bytes: a
        variable-length CDB) and 12 of timeouts, so 512 bytes hold it.
        """
        if not 0 <= opcode <= 0xFF:
            raise EncodeError(f"an operation code is 00h to FFh, not {opcode!r}")
        if service_action is not None and not 0 <= service_action <= 0xFFFF:
            raise EncodeError(f"a service action is 0000h to FFFFh, not {service_action!r}")
        return cls(rctd=rctd, reporting_options=1 if service_action is None else 2,
                   requested_operation_code=opcode, requested_service_action=service_action or 0,
                   allocation_length=allocation_length)


@command
class ReportSupportedTaskManagementFunctions(_MaintenanceIn):
    """REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (A3h/0Dh, SPC-5)."""

    service_action = 0x0D
    repd = field(2, 7, 1, doc="return extended parameter data")
    # bytes 3-5 reserved
    allocation_length = field(6, width=32, default=16)
    # byte 10 reserved
    control = field(11)


@command
class Reserve6(NoData):
    """RESERVE(6) (16h, SPC-2): reserve the whole logical unit (legacy reservations)."""

    opcode = 0x16
    cdb_length = 6
    standard = "SPC-2"
    # A reservation locks other initiators out of a shared logical unit (SPC-2 7.21, 7.17).
    changes_data = True
    # bytes 1-4: obsolete third-party/extent fields, kept zero
    control = field(5)


@command
class Release6(NoData):
    """RELEASE(6) (17h, SPC-2): release a RESERVE(6) reservation."""

    opcode = 0x17
    cdb_length = 6
    standard = "SPC-2"
    # A reservation locks other initiators out of a shared logical unit (SPC-2 7.21, 7.17).
    changes_data = True
    # bytes 1-4: obsolete third-party/extent fields, kept zero
    control = field(5)


@command
class Reserve10(ParameterOut):
    """RESERVE(10) (56h, SPC-2): reserve, possibly for a third party (LONGID sends an 8-byte ID)."""

    opcode = 0x56
    cdb_length = 10
    standard = "SPC-2"
    # A reservation locks other initiators out of a shared logical unit (SPC-2 7.21, 7.17).
    changes_data = True
    third_party = field(1, 4, 1, doc="3RDPTY")
    longid = field(1, 1, 1)
    # byte 2 obsolete (reservation identification)
    third_party_device_id = field(3)
    # bytes 4-6 reserved
    parameter_list_length = field(7, width=16, default=None)
    control = field(9)


@command
class Release10(ParameterOut):
    """RELEASE(10) (57h, SPC-2): release a RESERVE(10) reservation."""

    opcode = 0x57
    cdb_length = 10
    standard = "SPC-2"
    # A reservation locks other initiators out of a shared logical unit (SPC-2 7.21, 7.17).
    changes_data = True
    third_party = field(1, 4, 1, doc="3RDPTY")
    longid = field(1, 1, 1)
    third_party_device_id = field(3)
    parameter_list_length = field(7, width=16, default=None)
    control = field(9)


@base
class _PersistentReserveIn(AllocationIn):
    """PERSISTENT RESERVE IN (5Eh, SPC-5): service action in byte 1 bits 4-0."""

    opcode = 0x5E
    cdb_length = 10
    standard = "SPC-5"
    _sa_spec = SA_BYTE1
    # bytes 2-6 reserved
    allocation_length = field(7, width=16, default=4096)
    control = field(9)


@command
class PersistentReserveInReadKeys(_PersistentReserveIn):
    """PERSISTENT RESERVE IN, READ KEYS (5Eh/00h): the registered reservation keys."""

    service_action = 0x00


@command
class PersistentReserveInReadReservation(_PersistentReserveIn):
    """PERSISTENT RESERVE IN, READ RESERVATION (5Eh/01h): the current reservation."""

    service_action = 0x01


@command
class PersistentReserveInReportCapabilities(_PersistentReserveIn):
    """PERSISTENT RESERVE IN, REPORT CAPABILITIES (5Eh/02h)."""

    service_action = 0x02


@command
class PersistentReserveInReadFullStatus(_PersistentReserveIn):
    """PERSISTENT RESERVE IN, READ FULL STATUS (5Eh/03h): every registration and reservation."""

    service_action = 0x03


@base
class _PersistentReserveOut(ParameterOut):
    """PERSISTENT RESERVE OUT (5Fh, SPC-5): service action in byte 1 bits 4-0.

    ``data`` is the parameter list (24 bytes for the basic one).
    """

    opcode = 0x5F
    cdb_length = 10
    standard = "SPC-5"
    changes_data = True
    _sa_spec = SA_BYTE1
    scope = field(2, 7, 4)
    type = field(2, 3, 4, doc="reservation type")
    # bytes 3-4 reserved
    parameter_list_length = field(5, width=32, default=None)
    control = field(9)


@command
class PersistentReserveOutRegister(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, REGISTER (5Fh/00h)."""

    service_action = 0x00


@command
class PersistentReserveOutReserve(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, RESERVE (5Fh/01h)."""

    service_action = 0x01


@command
class PersistentReserveOutRelease(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, RELEASE (5Fh/02h)."""

    service_action = 0x02


@command
class PersistentReserveOutClear(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, CLEAR (5Fh/03h)."""

    service_action = 0x03


@command
class PersistentReserveOutPreempt(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, PREEMPT (5Fh/04h)."""

    service_action = 0x04


@command
class PersistentReserveOutPreemptAndAbort(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, PREEMPT AND ABORT (5Fh/05h)."""

    service_action = 0x05


@command
class PersistentReserveOutRegisterAndIgnoreExistingKey(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, REGISTER AND IGNORE EXISTING KEY (5Fh/06h)."""

    service_action = 0x06


@command
class PersistentReserveOutRegisterAndMove(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, REGISTER AND MOVE (5Fh/07h)."""

    service_action = 0x07


@command
class PersistentReserveOutReplaceLostReservation(_PersistentReserveOut):
    """PERSISTENT RESERVE OUT, REPLACE LOST RESERVATION (5Fh/08h)."""

    service_action = 0x08


@command
class SendDiagnostic(ParameterOut):
    """SEND DIAGNOSTIC (1Dh, SPC-5): run a self-test or send a diagnostic page."""

    opcode = 0x1D
    cdb_length = 6
    standard = "SPC-5"
    self_test_code = field(1, 7, 3)
    pf = field(1, 4, 1, doc="page format")
    selftest = field(1, 2, 1)
    devoffl = field(1, 1, 1, doc="device offline")
    unitoffl = field(1, 0, 1, doc="unit offline")
    # byte 2 reserved
    parameter_list_length = field(3, width=16, default=None)
    control = field(5)


@command
class ReceiveDiagnosticResults(AllocationIn):
    """RECEIVE DIAGNOSTIC RESULTS (1Ch, SPC-5): read diagnostic page ``page_code`` (PCV set)."""

    opcode = 0x1C
    cdb_length = 6
    standard = "SPC-5"
    pcv = field(1, 0, 1, doc="page code valid")
    page_code = field(2)
    allocation_length = field(3, width=16, default=4096)
    control = field(5)


@command
class ReadBuffer10(AllocationIn):
    """READ BUFFER(10) (3Ch, SPC-5): read a device buffer (MODE chooses data, descriptor, echo...)."""

    opcode = 0x3C
    cdb_length = 10
    standard = "SPC-5"
    mode_specific = field(1, 7, 3)
    mode = field(1, 4, 5)
    buffer_id = field(2)
    buffer_offset = field(3, width=24)
    allocation_length = field(6, width=24, default=REQUIRED)
    control = field(9)


@command
class WriteBuffer(ParameterOut):
    """WRITE BUFFER (3Bh, SPC-5): write a device buffer — including microcode download."""

    opcode = 0x3B
    cdb_length = 10
    standard = "SPC-5"
    changes_data = True
    irreversible = True
    mode_specific = field(1, 7, 3)
    mode = field(1, 4, 5)
    buffer_id = field(2)
    buffer_offset = field(3, width=24)
    parameter_list_length = field(6, width=24, default=None)
    control = field(9)


# INC_512 (SPC-5): lengths count 512-byte units instead of bytes.
_INC_512_UNIT = 512


@command
class SecurityProtocolIn(AllocationIn):
    """SECURITY PROTOCOL IN (A2h, SPC-5): receive security protocol data (INC_512: length in 512-byte units)."""

    opcode = 0xA2
    cdb_length = 12
    standard = "SPC-5"
    security_protocol = field(1)
    security_protocol_specific = field(2, width=16)
    inc_512 = field(4, 7, 1)
    # byte 5 reserved
    allocation_length = field(6, width=32, default=REQUIRED)
    # byte 10 reserved
    control = field(11)

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """The allocation length in bytes (× 512 with INC_512)."""
        return self.allocation_length * (_INC_512_UNIT if self.inc_512 else 1)  # type: ignore[no-any-return]


@command
class SecurityProtocolOut(ParameterOut):
    """SECURITY PROTOCOL OUT (B5h, SPC-5): send security protocol data (INC_512: length in 512-byte units)."""

    opcode = 0xB5
    cdb_length = 12
    standard = "SPC-5"
    changes_data = True
    # A security protocol may erase the medium cryptographically or revert the drive
    # (TCG Storage's Revert): sgpy.safety classifies B5h as irreversible.
    irreversible = True
    _length_field: ClassVar[str] = "transfer_length"
    security_protocol = field(1)
    security_protocol_specific = field(2, width=16)
    inc_512 = field(4, 7, 1)
    # byte 5 reserved
    transfer_length = field(6, width=32, default=None)
    # byte 10 reserved
    control = field(11)

    def _resolve(self) -> None:
        data = self.data
        if data is None or not self.inc_512:
            super()._resolve()
            return
        size = nbytes(data)
        units, rest = divmod(size, _INC_512_UNIT)
        if rest:
            raise EncodeError(f"{self.name}: with inc_512, len(data)={size} must be a multiple of 512")
        if self.transfer_length is None:
            _setattr(self, "transfer_length", units)
        elif self.transfer_length != units:
            raise EncodeError(
                f"{self.name}: transfer_length={self.transfer_length} units of 512 disagrees with len(data)={size}"
            )

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """The transfer length in bytes (× 512 with INC_512)."""
        return self.transfer_length * (_INC_512_UNIT if self.inc_512 else 1)  # type: ignore[no-any-return]
