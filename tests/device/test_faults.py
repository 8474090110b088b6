"""Faults injected by scsi_debug, seen through the engine.

Every fact about the simulated device below comes from the Linux 6.1
``drivers/scsi/scsi_debug.c`` (driver version 0191) that the sandbox runs:

* ``opts`` bits: 2 = medium error on reads of ``medium_error_start`` ..
  ``+ medium_error_count - 1``; 4 = drop (never answer) every ``every_nth``
  command; 8 = RECOVERED ERROR on reads and writes when ``every_nth`` fires.
  Writing ``opts`` or ``every_nth`` rounds scsi_debug's (global, all devices)
  command counter down to a multiple of ``every_nth``, so after the write the
  N-th command to reach the driver is the one hit.
* Unit attentions are kept per logical unit and reported in priority order
  (``make_ua``): power on occurred 29h/01h (new device), power on/reset
  29h/00h (device reset), SCSI bus reset 29h/02h (bus or host reset),
  capacity data has changed 2Ah/09h (``virtual_gb`` changed).
* ``tur_ms_to_ready``: until it elapses TEST UNIT READY gets NOT READY 04h/01h
  with the milliseconds left in the INFORMATION field (SPC-6 proposal
  20-061r2); media access commands get 04h/02h.
* ``wp``: writes get DATA PROTECT 27h/02h.

Tests that change a load-time parameter ask for it with the ``scsi_debug``
marker; run-time knobs go through the ``scsi_debug`` fixture, which restores
them afterwards.
"""

import collections
import os
import struct
import time

import pytest

from sgpy import Channel, Reactor, _binding, command, handler
from sgpy.constants import Direction, HostStatus, ScsiStatus, SenseKey
from sgpy.errors import (
    CommandTimeout,
    DataProtect,
    DeviceGone,
    IllegalRequest,
    MediumError,
    NotReady,
    TaskFailed,
    UnitAttention,
    VerifyFailed,
)

BLOCK = 512
#: The sandbox's base dev_size_mb=64, in 512-byte blocks.
BASE_BLOCKS = 64 * 1024 * 1024 // BLOCK
#: Command timeout for the timeout tests; the SCSI error handler adds about
#: 1.3 s in the sandbox before the command comes back with DID_TIME_OUT.
SHORT_TIMEOUT_MS = 300


def pattern(lba, size=BLOCK):
    """What block ``lba`` holds once :func:`write_pattern` ran: its own number."""
    return struct.pack(">Q", lba) * (size // 8)


def write_pattern(ch, first, count, chunk=64):
    cmds = []
    for lba in range(first, first + count, chunk):
        n = min(chunk, first + count - lba)
        cmds.append(command.Write10(lba=lba, transfer_length=n,
                                    data=b"".join(pattern(i) for i in range(lba, lba + n))))
    ch.execute_many(cmds)


def settle(ch, tries=10):
    """Consume pending unit attentions so the next command sees the device as it is."""
    for _ in range(tries):
        io = ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        if io.error is None:
            return
        if not isinstance(io.error, UnitAttention):
            raise io.error
    raise AssertionError(f"{ch!r} still reports unit attentions after {tries} TEST UNIT READY")


def open_ready(path, **options):
    options.setdefault("block_size", BLOCK)
    ch = Channel.from_path(path, **options)
    try:
        settle(ch)
    except BaseException:
        ch.close()
        raise
    return ch


def expect_sense(exc, key, asc, ascq):
    assert exc.sense is not None, exc
    assert (exc.sense.sense_key, exc.sense.asc, exc.sense.ascq) == (key, asc, ascq), exc.sense


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


# -- 1. out-of-order completion ---------------------------------------------


@pytest.mark.scsi_debug(ndelay=50_000_000, random=1)  # each command takes 0..50 ms, at random
@pytest.mark.parametrize("max_fds", [1, 16])
def test_out_of_order_completions_reach_their_own_io(sg_device, reactor, max_fds):
    n = 512
    with open_ready(sg_device, reactor=reactor, max_fds=max_fds) as ch:
        write_pattern(ch, 0, n)
        lbas = list(range(n))
        lbas = lbas[1::2] + lbas[0::2]  # not in LBA order either
        arrival = []
        cmds = []
        for lba in lbas:
            c = command.Read10(lba=lba, transfer_length=1)
            c.add_handler(lambda io, lba=lba: arrival.append(lba))
            cmds.append(c)
        before = reactor.statistics()
        ios = ch.execute_many(cmds, async_=True)
        ch.wait(timeout=30)
        after = reactor.statistics()

        assert all(io.returned and io.ok for io in ios)
        for lba, io in zip(lbas, ios):
            assert io.data == pattern(lba), f"the IO of LBA {lba} holds block {io.data[:8].hex()}"
        # Each completion was handled exactly once...
        assert sorted(collections.Counter(arrival).values()) == [1] * n
        assert sorted(arrival) == sorted(lbas)
        # ...and they really came back in another order than they were sent.
        sent_at = {lba: i for i, lba in enumerate(lbas)}
        inversions = sum(1 for a, b in zip(arrival, arrival[1:]) if sent_at[a] > sent_at[b])
        assert inversions > 0
        assert after["submitted"] - before["submitted"] == n
        assert after["completed"] - before["completed"] == n
        assert after["failed"] == before["failed"]
        assert (after["outstanding"], after["in_flight"], after["queued"]) == (0, 0, 0)


# -- 2. timeout -----------------------------------------------------------------


def test_a_dropped_command_raises_command_timeout(sg_device, scsi_debug):
    with open_ready(sg_device, timeout=SHORT_TIMEOUT_MS) as ch:
        write_pattern(ch, 0, 4)
        scsi_debug.set(opts=4, every_nth=1)  # opts bit 4: drop every every_nth-th command
        start = time.monotonic()
        with pytest.raises(CommandTimeout) as info:
            ch.cmd.Read10(lba=1, transfer_length=1)
        elapsed = time.monotonic() - start
        scsi_debug.set(every_nth=0)
        exc = info.value
        assert isinstance(exc, TaskFailed)
        assert exc.host_status == HostStatus.DID_TIME_OUT
        assert exc.io is not None and exc.io.hdr.duration >= SHORT_TIMEOUT_MS
        assert elapsed >= SHORT_TIMEOUT_MS / 1000
        # The same channel goes on.
        assert ch.cmd.Read10(lba=1, transfer_length=1).data == pattern(1)
        assert ch.poll()


def test_timeouts_in_a_batch_leave_the_reactor_working(sg_devices, scsi_debug, reactor):
    a = open_ready(sg_devices[0], reactor=reactor, timeout=SHORT_TIMEOUT_MS)
    b = open_ready(sg_devices[1], reactor=reactor)
    try:
        write_pattern(a, 0, 8)
        before = reactor.statistics()
        scsi_debug.set(opts=4, every_nth=4)  # the 4th and the 8th read are dropped
        ios = a.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(8)], async_=True)
        scsi_debug.set(every_nth=0)
        # While the dropped commands wait for their timeout, other work goes on.
        for lba in range(8):
            assert b.cmd.Read10(lba=lba, transfer_length=1).data == pattern(lba)  # one store for all devices
        assert b.execute_many([command.TestUnitReady() for _ in range(50)])
        assert not a.poll()  # B's work was done while A's two commands were still out

        a.wait(timeout=30)
        timed_out = [i for i, io in enumerate(ios) if isinstance(io.error, CommandTimeout)]
        assert len(timed_out) == 2
        for i, io in enumerate(ios):
            if i in timed_out:
                assert io.hdr.host_status == HostStatus.DID_TIME_OUT
                with pytest.raises(CommandTimeout):
                    io.wait()
            else:
                assert io.ok and io.data == pattern(i)
        # Afterwards both channels keep working.
        assert [io.data for io in a.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(8)])] \
            == [pattern(i) for i in range(8)]
        assert b.cmd.TestUnitReady().ok
        s = reactor.statistics()
        assert s["failed"] - before["failed"] == 2
        assert s["completed"] - before["completed"] == 6 + 8 + 50 + 8 + 1
        assert s["submitted"] == s["completed"] + s["failed"]
        assert (s["outstanding"], s["in_flight"], s["queued"], s["abandoned"]) == (0, 0, 0, 0)
    finally:
        a.close()
        b.close()


# -- 3. medium error ----------------------------------------------------------

MEDIUM = {"medium_error_start": 5000, "medium_error_count": 4}


@pytest.mark.scsi_debug(**MEDIUM)
@pytest.mark.parametrize(
    "lba, blocks, information",
    [
        (5000, 1, 5000),
        (5003, 1, 5003),
        (5002, 8, 5002),
        # A read that starts before the bad range: scsi_debug reports the
        # read's own first LBA (resp_read_dt0 puts max(lba, 0x1234) there).
        (4998, 4, 4998),
    ],
)
def test_medium_error_reports_the_lba_in_fixed_sense(sg_device, scsi_debug, lba, blocks, information):
    with open_ready(sg_device) as ch:
        scsi_debug.set(opts=2)  # opts bit 2: medium error
        with pytest.raises(MediumError) as info:
            ch.cmd.Read10(lba=lba, transfer_length=blocks)
        exc = info.value
        expect_sense(exc, SenseKey.MEDIUM_ERROR, 0x11, 0x00)
        assert not exc.sense.descriptor_format and exc.sense.response_code == 0x70
        assert exc.sense.valid and exc.sense.information == information
        assert "Unrecovered read error" in str(exc)
        assert exc.status == ScsiStatus.CHECK_CONDITION


@pytest.mark.scsi_debug(**MEDIUM)
@pytest.mark.parametrize("lba, blocks", [(4996, 4), (5004, 1), (0, 8)])
def test_reads_beside_the_bad_range_succeed(sg_device, scsi_debug, lba, blocks):
    with open_ready(sg_device) as ch:
        write_pattern(ch, lba, blocks)
        scsi_debug.set(opts=2)
        io = ch.cmd.Read10(lba=lba, transfer_length=blocks)
        assert io.ok and io.sense is None
        assert io.data == b"".join(pattern(i) for i in range(lba, lba + blocks))


@pytest.mark.scsi_debug(**MEDIUM)
def test_medium_error_in_descriptor_sense(sg_device, scsi_debug):
    with open_ready(sg_device) as ch:
        scsi_debug.set(opts=2, dsense=1)
        with pytest.raises(MediumError) as info:
            ch.cmd.Read16(lba=5001, transfer_length=1)
        exc = info.value
        expect_sense(exc, SenseKey.MEDIUM_ERROR, 0x11, 0x00)
        assert exc.sense.descriptor_format and exc.sense.response_code == 0x72
        # scsi_debug fills the INFORMATION field for fixed-format sense only
        # (resp_read_dt0 checks for response code 70h): no descriptor here.
        assert exc.sense.information is None and exc.sense.descriptors == ()
        # Asynchronously the same failure waits in the IO.
        io = ch.execute(command.Read16(lba=5001, transfer_length=1), async_=True)
        with pytest.raises(MediumError):
            io.wait()
        assert isinstance(io.error, MediumError) and io.sense.descriptor_format


# -- 6. must_fail against a real sense ----------------------------------------


@pytest.mark.scsi_debug(**MEDIUM)
@pytest.mark.parametrize("dsense", [0, 1])
@pytest.mark.parametrize(
    "verify, accepted",
    [
        (handler.must_fail, True),
        (handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR), True),
        (handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR, asc=0x11), True),
        (handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR, asc=0x11, ascq=0x00), True),
        (handler.must_fail(exception=MediumError), True),
        (handler.must_fail(status=ScsiStatus.CHECK_CONDITION), True),
        (handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR, asc=0x10), False),
        (handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR, asc=0x11, ascq=0x01), False),
        (handler.must_fail(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x11), False),
        (handler.must_fail(exception=DeviceGone), False),
        (handler.must_fail(host_status=HostStatus.DID_TIME_OUT), False),
    ],
    ids=repr,
)
def test_must_fail_checks_the_sense_it_is_given(sg_device, scsi_debug, dsense, verify, accepted):
    with open_ready(sg_device) as ch:
        scsi_debug.set(opts=2, dsense=dsense)
        bad = command.Read10(lba=5000, transfer_length=1)
        if accepted:
            io = ch.execute(bad, verify_handler=verify)
            assert isinstance(io.error, MediumError) and io.exception is None
            io = ch.execute(bad, async_=True, verify_handler=verify)
            assert io.wait() is None
        else:
            with pytest.raises(VerifyFailed, match="expected to fail with") as info:
                ch.execute(bad, verify_handler=verify)
            assert isinstance(info.value.__cause__, MediumError)
            io = ch.execute(bad, async_=True, verify_handler=verify)
            with pytest.raises(VerifyFailed):
                io.wait()
            assert isinstance(io.error, MediumError)
        # A read that succeeds fails every must_fail, accepting or not.
        with pytest.raises(VerifyFailed, match="but it succeeded"):
            ch.execute(command.Read10(lba=0, transfer_length=1), verify_handler=verify)


# -- 4. unit attention, not ready, write protect, illegal request, recovered --


#: SG_SCSI_RESET_TARGET (include/scsi/sg.h), which the binding does not name.
SG_SCSI_RESET_TARGET = 4


@pytest.mark.parametrize(
    "kind, ascq",
    [
        # scsi_debug_device_reset: SDEBUG_UA_POR on that LU.
        (_binding.SG_SCSI_RESET_DEVICE, 0x00),
        # scsi_debug_target_reset: SDEBUG_UA_BUS_RESET on the LUs of that
        # target.  (A bus or host reset would reach the other target too,
        # but the SCSI error handler then sleeps 10 s: BUS_RESET_SETTLE_TIME.)
        (SG_SCSI_RESET_TARGET, 0x02),
    ],
    ids=["device-reset", "target-reset"],
)
def test_unit_attention_after_a_reset(sg_devices, kind, ascq):
    a = open_ready(sg_devices[0])
    b = open_ready(sg_devices[1])  # another target of the same host
    try:
        fd = os.open(sg_devices[0], os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            _binding.scsi_reset(fd, kind)
        finally:
            os.close(fd)
        with pytest.raises(UnitAttention) as info:
            a.cmd.TestUnitReady()
        expect_sense(info.value, SenseKey.UNIT_ATTENTION, 0x29, ascq)
        assert info.value.sense.description in str(info.value)
        # Reported once; then the device answers as usual.
        assert a.cmd.TestUnitReady().ok
        assert a.execute(command.TestUnitReady(), async_=True).wait() is None
        # The other target was not reset.
        assert b.cmd.TestUnitReady().ok
    finally:
        a.close()
        b.close()


def test_unit_attention_after_a_capacity_change(sg_devices, scsi_debug):
    a = open_ready(sg_devices[0])
    b = open_ready(sg_devices[1])
    try:
        scsi_debug.set(virtual_gb=1)  # every LU: SDEBUG_UA_CAPACITY_CHANGED
        for ch in (a, b):
            with pytest.raises(UnitAttention) as info:
                ch.cmd.ReadCapacity16()
            expect_sense(info.value, SenseKey.UNIT_ATTENTION, 0x2A, 0x09)
            assert "Capacity data has changed" in str(info.value)
            assert ch.cmd.ReadCapacity16().result.returned_lba == (1 << 30) // BLOCK - 1
        scsi_debug.restore()  # virtual_gb=0: the capacity changes back, with another UA
        for ch in (a, b):
            io = ch.execute(command.ReadCapacity16(), verify_handler=handler.must_fail(
                sense_key=SenseKey.UNIT_ATTENTION, asc=0x2A, ascq=0x09))
            assert isinstance(io.error, UnitAttention)
            assert ch.cmd.ReadCapacity16().result.returned_lba == BASE_BLOCKS - 1
    finally:
        a.close()
        b.close()


# no_uld=1 keeps sd from probing (and waiting out the delay) at load time.
@pytest.mark.scsi_debug(tur_ms_to_ready=1500, no_uld=1)
def test_power_on_then_not_ready_until_ready(sg_device):
    with Channel.from_path(sg_device, block_size=BLOCK) as ch:
        with pytest.raises(UnitAttention) as info:
            ch.cmd.TestUnitReady()
        expect_sense(info.value, SenseKey.UNIT_ATTENTION, 0x29, 0x01)  # power on occurred
        # INQUIRY answers whatever the state (F_SKIP_UA, not a media access).
        assert ch.cmd.Inquiry().result.product.strip() == "scsi_debug"
        with pytest.raises(NotReady) as info:
            ch.cmd.TestUnitReady()
        expect_sense(info.value, SenseKey.NOT_READY, 0x04, 0x01)  # becoming ready
        left_ms = info.value.sense.information
        assert 0 < left_ms <= 1500
        with pytest.raises(NotReady) as info:
            ch.cmd.Read10(lba=0, transfer_length=1)
        expect_sense(info.value, SenseKey.NOT_READY, 0x04, 0x02)  # media access while stopped
        time.sleep(left_ms / 1000 + 0.05)
        assert ch.cmd.TestUnitReady().ok
        assert ch.cmd.Read10(lba=0, transfer_length=1).ok


@pytest.mark.scsi_debug(wp=1)
def test_write_protect_refuses_writes(sg_device):
    with open_ready(sg_device) as ch:
        before = ch.cmd.Read10(lba=7, transfer_length=1).data
        with pytest.raises(DataProtect) as info:
            ch.cmd.Write10(lba=7, data=pattern(0xBAD))
        expect_sense(info.value, SenseKey.DATA_PROTECT, 0x27, 0x02)
        assert "Logical unit software write protected" in str(info.value)
        io = ch.execute(command.Write16(lba=7, data=pattern(0xBAD)), async_=True)
        with pytest.raises(DataProtect):
            io.wait()
        assert ch.cmd.Read10(lba=7, transfer_length=1).data == before


@pytest.mark.parametrize(
    "cdb, asc, ascq, text",
    [
        (bytes([0x02, 0, 0, 0, 0, 0]), 0x20, 0x00, "Invalid command operation code"),
        (bytes([0xC0]) + bytes(9), 0x20, 0x00, "Invalid command operation code"),
        (bytes([0x8C]) + bytes(15), 0x20, 0x00, "Invalid command operation code"),
        # MAINTENANCE IN with a service action scsi_debug lacks: the field
        # pointer names CDB byte 1 bit 4 (mk_sense_invalid_fld(scp, 1, 4)).
        (bytes([0xA3, 0x1F]) + bytes(10), 0x24, 0x00, "Invalid field in CDB"),
        # READ(16) one block past the end (SBC-4 5.16).
        (bytes([0x88, 0]) + BASE_BLOCKS.to_bytes(8, "big") + (1).to_bytes(4, "big") + bytes(2),
         0x21, 0x00, "Logical block address out of range"),
    ],
    ids=["opcode-02h", "opcode-C0h", "opcode-8Ch", "bad-service-action", "lba-out-of-range"],
)
def test_illegal_request_names_the_asc(sg_device, cdb, asc, ascq, text):
    with open_ready(sg_device) as ch:
        with pytest.raises(IllegalRequest) as info:
            ch.execute(command.RawCommand(cdb=cdb, direction=Direction.NONE))
        exc = info.value
        expect_sense(exc, SenseKey.ILLEGAL_REQUEST, asc, ascq)
        assert exc.sense.description == text
        assert str(exc).startswith(f"ILLEGAL REQUEST — {text} ({asc:02X}h/{ascq:02X}h)")
        if asc == 0x24:
            fp = exc.sense.sense_key_specific
            assert (fp.cd, fp.field_pointer, fp.bit_pointer) == (True, 1, 4)


def test_recovered_error_is_success_with_the_sense_kept(sg_device, scsi_debug):
    with open_ready(sg_device) as ch:
        scsi_debug.set(opts=8, every_nth=1)  # opts bit 8: RECOVERED ERROR on each read and write
        io = ch.cmd.Write10(lba=3, data=pattern(3))
        assert io.ok and io.error is None
        assert io.sense.sense_key == SenseKey.RECOVERED_ERROR
        io = ch.cmd.Read10(lba=3, transfer_length=1)
        assert io.ok and io.error is None and io.data == pattern(3)
        assert (io.sense.sense_key, io.sense.asc, io.sense.ascq) == (SenseKey.RECOVERED_ERROR, 0x5D, 0x00)
        assert io.sense.description == "Failure prediction threshold exceeded"
        assert io.hdr.status == ScsiStatus.CHECK_CONDITION and io.hdr.sense
        ios = ch.execute_many([command.Read10(lba=3, transfer_length=1) for _ in range(20)], async_=True)
        ch.wait(timeout=10)
        assert all(io.ok and io.sense.sense_key == SenseKey.RECOVERED_ERROR for io in ios)
        # It counts as success, so must_fail refuses it.
        with pytest.raises(VerifyFailed, match="but it succeeded"):
            ch.execute(command.Read10(lba=3, transfer_length=1), verify_handler=handler.must_fail)
