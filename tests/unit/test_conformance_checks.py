"""Conformance checks whose commands neither sandbox target implements, run against an in-memory disk.

scsi_debug and tgtd have no SANITIZE, and scsi_debug no ORWRITE, so on the
recorded targets those checks only ever skip.  Here a small fake block device
answers them, once the way SBC-4 asks and once the wrong way, so that each
check is seen to pass, to fail and to skip for the right reasons.
"""

from __future__ import annotations

import os
import types
from typing import Any, List, Optional, Set, Tuple

import pytest

from sgpy import command as c
from sgpy.conformance import test_sbc
from sgpy.conformance.plugin import Dut
from sgpy.results import parse_result
from sgpy.safety import ALLOW_ALL
from sgpy.status import classify

BLOCKS, SIZE = 64, 512


def _sense(key: int, asc: int, ascq: int = 0) -> bytes:
    """Fixed-format sense data (response code 70h)."""
    return bytes([0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0])


class FakeIo:
    """What a check reads of an IO: ``data``, ``error``, ``sense``, ``hdr``, ``result``."""

    def __init__(self, cmd: Any, data: bytes = b"", sense: bytes = b"", result: Any = None) -> None:
        done = classify(status=2 if sense else 0, host_status=0, driver_status=8 if sense else 0, sense=sense,
                        command=cmd)
        self.command = cmd
        self.error = done.error
        self.sense = done.sense
        self.data = data
        self.hdr = types.SimpleNamespace(status=2 if sense else 0, resid=0, sense=sense)
        self._result = result

    @property
    def result(self) -> Any:
        if self.error is not None:
            return None
        return self._result if self._result is not None else parse_result(self.command, self.data)


class FakeDisk:
    """A 64-block disk with 512-byte blocks that answers the commands the SANITIZE and ORWRITE checks send.

    ``listed``: the (opcode, service action) pairs REPORT SUPPORTED OPERATION CODES names (None: the
    device has no REPORT SUPPORTED OPERATION CODES).  ``sanitize``: how each SANITIZE service action
    behaves: ``"good"``, ``"lazy"`` (ends GOOD, changes nothing) or ``"absent"`` (INVALID FIELD IN
    CDB).  ``orwrite``: ``"or"``, ``"write"`` (stores the data as WRITE would) or ``"absent"``
    (INVALID COMMAND OPERATION CODE).  ``wabereq``: the Block Device Characteristics page's field.
    ``busy``: TEST UNIT READYs that end SANITIZE IN PROGRESS after a SANITIZE."""

    def __init__(self, *, listed: Optional[Set[Tuple[int, Optional[int]]]] = None, sanitize: str = "good",
                 orwrite: str = "or", wabereq: int = 0, busy: int = 2) -> None:
        self.blocks = [os.urandom(SIZE) for _ in range(BLOCKS)]
        self.listed = listed
        self.sanitize = sanitize
        self.orwrite = orwrite
        self.wabereq = wabereq
        self.busy = busy
        self.pending_busy = 0
        self.erased: Set[int] = set()
        self.sent: List[str] = []
        self.num_blocks, self.block_size = BLOCKS, SIZE

    def execute(self, cmd: Any, verify_handler: Any = None) -> FakeIo:
        self.sent.append(type(cmd).__name__)
        io = self._answer(cmd)
        if verify_handler is not None:
            verify_handler(io)
        elif io.error is not None:
            raise io.error
        return io

    def _answer(self, cmd: Any) -> FakeIo:
        if isinstance(cmd, c.TestUnitReady):
            if self.pending_busy:
                self.pending_busy -= 1
                return FakeIo(cmd, sense=_sense(0x2, 0x04, 0x1B))
            return FakeIo(cmd)
        if isinstance(cmd, c.ReportSupportedOperationCodes):
            if self.listed is None:
                return FakeIo(cmd, sense=_sense(0x5, 0x20))
            table = types.SimpleNamespace(commands=[types.SimpleNamespace(opcode=op, service_action=sa)
                                                    for op, sa in sorted(self.listed, key=str)])
            return FakeIo(cmd, data=b"\0" * 4, result=table)
        if isinstance(cmd, c.Inquiry):
            if cmd.evpd and cmd.page_code == 0x00:
                return FakeIo(cmd, data=bytes([0, 0, 0, 2, 0x00, 0xB1]))
            if cmd.evpd and cmd.page_code == 0xB1:
                page = bytearray(64)
                page[1], page[3], page[7] = 0xB1, 60, (self.wabereq << 6) | (self.wabereq << 4)
                return FakeIo(cmd, data=bytes(page))
            return FakeIo(cmd, sense=_sense(0x5, 0x24))
        if isinstance(cmd, c.Read16):
            lba = cmd.lba
            if lba in self.erased and self.wabereq == 3:
                return FakeIo(cmd, sense=_sense(0x3, 0x11, 0x15))
            return FakeIo(cmd, data=b"".join(self.blocks[lba:lba + cmd.transfer_length]))
        if isinstance(cmd, c.Write16):
            data = bytes(cmd.data)
            for i in range(len(data) // SIZE):
                self.blocks[cmd.lba + i] = data[i * SIZE:(i + 1) * SIZE]
                self.erased.discard(cmd.lba + i)
            return FakeIo(cmd)
        if isinstance(cmd, c.Orwrite16):
            if self.orwrite == "absent":
                return FakeIo(cmd, sense=_sense(0x5, 0x20))
            data = bytes(cmd.data)
            for i in range(len(data) // SIZE):
                new = data[i * SIZE:(i + 1) * SIZE]
                old = self.blocks[cmd.lba + i]
                self.blocks[cmd.lba + i] = bytes(a | b for a, b in zip(old, new)) if self.orwrite == "or" else new
            return FakeIo(cmd)
        if isinstance(cmd, (c.SanitizeOverwrite, c.SanitizeBlockErase, c.SanitizeCryptographicErase)):
            return self._sanitize(cmd)
        raise AssertionError(f"the fake disk does not know {cmd!r}")

    def _sanitize(self, cmd: Any) -> FakeIo:
        if self.sanitize == "absent":
            return FakeIo(cmd, sense=_sense(0x5, 0x24))
        self.pending_busy = self.busy
        if self.sanitize == "lazy":
            return FakeIo(cmd)
        if isinstance(cmd, c.SanitizeOverwrite):
            param = bytes(cmd.data)
            length = int.from_bytes(param[2:4], "big")
            pattern = param[4:4 + length]
            self.blocks = [pattern for _ in range(BLOCKS)]
        else:
            self.blocks = [bytes(SIZE) for _ in range(BLOCKS)]
            self.erased = set(range(BLOCKS))
        return FakeIo(cmd)


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """SANITIZE IN PROGRESS is polled at once here, not once a second."""
    monkeypatch.setattr(test_sbc, "_SANITIZE_POLL_S", 0.0)


def _dut(disk: FakeDisk) -> Dut:
    """A Dut around the fake disk (what Dut.__init__ would learn, set by hand)."""
    dut = Dut.__new__(Dut)
    dut.target = "fake"
    dut.second_initiator_name = None
    dut.policy = ALLOW_ALL
    dut.channel = disk
    dut.inquiry = types.SimpleNamespace(peripheral_device_type=0)
    dut._opcodes = None
    dut._opcodes_known = False
    dut._vpd = None
    return dut


_SANITIZE_SAS = {(0x48, 0x01), (0x48, 0x02), (0x48, 0x03)}
_CHECKS = {
    "overwrite": test_sbc.test_sanitize_overwrite,
    "block erase": test_sbc.test_sanitize_block_erase,
    "crypto erase": test_sbc.test_sanitize_cryptographic_erase,
}


@pytest.mark.parametrize("which", list(_CHECKS))
def test_sanitize_checks_pass_on_a_device_that_sanitizes(which: str) -> None:
    disk = FakeDisk(listed=_SANITIZE_SAS | {(0x12, None)})
    _CHECKS[which](_dut(disk))
    assert disk.pending_busy == 0  # it waited out SANITIZE IN PROGRESS


@pytest.mark.parametrize("which", list(_CHECKS))
def test_sanitize_checks_fail_on_a_device_that_leaves_the_data(which: str) -> None:
    disk = FakeDisk(listed=_SANITIZE_SAS | {(0x12, None)}, sanitize="lazy")
    with pytest.raises(AssertionError, match="before|pattern"):
        _CHECKS[which](_dut(disk))


@pytest.mark.parametrize("which", list(_CHECKS))
def test_sanitize_checks_skip_what_the_opcode_list_leaves_out_and_write_nothing(which: str) -> None:
    disk = FakeDisk(listed={(0x12, None)})
    before = list(disk.blocks)
    with pytest.raises(pytest.skip.Exception, match="not in REPORT SUPPORTED OPERATION CODES"):
        _CHECKS[which](_dut(disk))
    assert disk.blocks == before and "Write16" not in disk.sent


@pytest.mark.parametrize("which", list(_CHECKS))
def test_sanitize_checks_without_an_opcode_list_skip_a_refused_service_action_and_restore(which: str) -> None:
    disk = FakeDisk(listed=None, sanitize="absent")
    before = list(disk.blocks)
    with pytest.raises(pytest.skip.Exception, match="invalid field"):
        _CHECKS[which](_dut(disk))
    assert disk.blocks == before  # the sample blocks it wrote are back


def test_a_listed_sanitize_that_is_refused_fails() -> None:
    disk = FakeDisk(listed=_SANITIZE_SAS, sanitize="absent")
    with pytest.raises(Exception, match="Invalid field in CDB"):
        test_sbc.test_sanitize_block_erase(_dut(disk))


def test_block_erase_reads_follow_wabereq() -> None:
    # WABEREQ 11b: reads of erased blocks end MEDIUM ERROR, WRITE AFTER SANITIZE REQUIRED.
    test_sbc.test_sanitize_block_erase(_dut(FakeDisk(listed=_SANITIZE_SAS, wabereq=3)))
    # WABEREQ 10b wants MEDIUM ERROR other than WRITE AFTER SANITIZE REQUIRED: GOOD reads fail the check.
    with pytest.raises(AssertionError, match="WABEREQ is 10b"):
        test_sbc.test_sanitize_block_erase(_dut(FakeDisk(listed=_SANITIZE_SAS, wabereq=2)))


def test_orwrite_check_passes_on_or_fails_on_write_and_accepts_a_refusal_when_not_listed() -> None:
    test_sbc.test_orwrite_16_ors_the_data_into_the_blocks(_dut(FakeDisk(listed={(0x8B, None)})))
    with pytest.raises(AssertionError, match="the data sent"):
        test_sbc.test_orwrite_16_ors_the_data_into_the_blocks(_dut(FakeDisk(listed={(0x8B, None)}, orwrite="write")))
    disk = FakeDisk(listed={(0x12, None)}, orwrite="absent")
    before = list(disk.blocks)
    test_sbc.test_orwrite_16_ors_the_data_into_the_blocks(_dut(disk))
    assert disk.blocks == before
    # Not listed, yet it ORs: it does not refuse as INVALID COMMAND OPERATION CODE.
    with pytest.raises(Exception, match="expected to fail"):
        test_sbc.test_orwrite_16_ors_the_data_into_the_blocks(_dut(FakeDisk(listed={(0x12, None)})))
    # No opcode list and INVALID COMMAND OPERATION CODE: the device lacks ORWRITE.
    with pytest.raises(pytest.skip.Exception, match="ORWRITE"):
        test_sbc.test_orwrite_16_ors_the_data_into_the_blocks(_dut(FakeDisk(listed=None, orwrite="absent")))
