"""Channel.execute's synchronous fast path (sgpy/channel.py, ``_plain_entry``).

A command sent synchronously a second time skips the general path's checks:
it was checked once for this channel, and only what can change between
calls (its handler list, the channel's policy, its block size, close and
unplug) is looked at again.  Each test here changes one of those between
calls and asserts the outcome is the general path's; the last one raises
SIGINT at every bytecode instruction of ``execute`` and checks nothing is
left half done.
"""

import os
import signal
import struct
import sys
import threading

import pytest

from sgpy import Channel, _interrupt, command, handler, safety
from sgpy.errors import ChannelClosed, IllegalRequest, UnsafeCommand
from sgpy.io import Input, NoDirectionIo
from sgpy.transport import SgFd, SgPool
from sgpy._binding import SG_MAX_QUEUE

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from signal_trace import run_with_signal_at  # noqa: E402

BLOCK = 512


def open_ready(path, **kw):
    ch = Channel.from_path(path, **kw)
    ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)  # clears the power-on unit attention
    return ch


def counts(ch):
    r = ch.reactor
    return r.submitted, r.completed, r.failed, ch.submitted


def test_repeated_commands_get_fresh_finished_ios_counted_once_each(sg_device):
    with open_ready(sg_device) as ch:
        tur = command.TestUnitReady()
        before = counts(ch)
        ios = [ch.execute(tur) for _ in range(50)]
        after = counts(ch)
        assert len({id(io) for io in ios}) == 50
        for io in ios:
            assert type(io) is NoDirectionIo and io.returned and io.ok and io.command is tur
            assert io.hdr.status == 0 and io.hdr.resid == 0 and io.error is None and io.data == b""
        assert [a - b for a, b in zip(after, before)] == [50, 50, 0, 50]
        assert ch.outstanding == 0 and ch.reactor.outstanding == 0


def test_reads_return_the_medium_and_each_io_owns_its_buffer(sg_device):
    with open_ready(sg_device, block_size=BLOCK) as ch:
        data = b"".join(struct.pack(">Q", 1000 + i) * (BLOCK // 8) for i in range(4))
        ch.execute(command.Write10(lba=1000, transfer_length=4, data=data))
        reads = [command.Read10(lba=1000 + i, transfer_length=1) for i in range(4)]
        first = [ch.execute(rd) for rd in reads]
        second = [ch.execute(rd) for rd in reads]  # the fast path: each command seen once already
        for i, (a, b) in enumerate(zip(first, second)):
            assert type(b) is Input and b.length == BLOCK and b.hdr.resid == 0
            assert a.data == b.data == data[i * BLOCK:(i + 1) * BLOCK]
        second[0].data_buf[:8] = b"\xff" * 8  # a caller's own copy: nothing else changes
        assert second[1].data == data[BLOCK:2 * BLOCK]
        assert ch.execute(reads[0]).data == data[:BLOCK]
        assert second[0].data_buf is not second[1].data_buf


def test_a_handler_added_after_the_first_call_runs(sg_device):
    with open_ready(sg_device) as ch:
        tur = command.TestUnitReady()
        ch.execute(tur)
        ch.execute(tur)
        seen = []
        tur.add_handler(seen.append)
        io = ch.execute(tur)
        assert seen == [io]


def test_a_policy_set_after_the_first_call_refuses(sg_device):
    with open_ready(sg_device) as ch:
        release = command.Release6()
        ch.execute(release)
        ch.execute(release)
        ch.policy = safety.Policy()  # read-only
        before = counts(ch)
        with pytest.raises(UnsafeCommand):
            ch.execute(release)
        assert counts(ch) == before
        ch.policy = None
        ch.read_only = True
        with pytest.raises(UnsafeCommand):
            ch.execute(release)
        assert counts(ch) == before


def test_a_new_block_size_resolves_the_command_again(sg_device):
    with open_ready(sg_device, block_size=BLOCK) as ch:
        rd = command.Read10(lba=0, transfer_length=1)
        assert ch.execute(rd).length == BLOCK
        assert ch.execute(rd).length == BLOCK
        ch.block_size = 4 * BLOCK  # the device still answers 512 bytes: a residue
        io = ch.execute(rd, verify_handler=handler.might_fail)
        assert io.length == 4 * BLOCK
        io = ch.execute(rd)
        assert io.length == 4 * BLOCK and io.hdr.resid == 3 * BLOCK and len(io.data) == BLOCK


def test_a_failure_on_the_fast_path_raises_with_its_sense_and_io(sg_device):
    with open_ready(sg_device, block_size=BLOCK) as ch:
        beyond = command.Read16(lba=0xFFFFFFFF, transfer_length=1)
        for _ in range(3):
            before = counts(ch)
            with pytest.raises(IllegalRequest) as info:
                ch.execute(beyond)
            io = info.value.io
            assert io.returned and io.error is info.value and io.sense is not None
            assert io.hdr.status == 2 and io.hdr.sense  # CHECK CONDITION, with its sense bytes
            s, c, f, t = (a - b for a, b in zip(counts(ch), before))
            assert (s, c, f, t) == (1, 0, 1, 1)


def test_a_closed_channel_refuses_a_command_it_has_seen(sg_device):
    ch = open_ready(sg_device)
    tur = command.TestUnitReady()
    ch.execute(tur)
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.execute(tur)


def test_threads_on_one_channel_lose_and_double_nothing(sg_device):
    with open_ready(sg_device, block_size=BLOCK) as ch:
        tur = command.TestUnitReady()
        rd = command.Read10(lba=0, transfer_length=1)
        before = counts(ch)
        errors = []
        done = []

        def worker():
            try:
                for i in range(100):
                    io = ch.execute(tur if i % 2 else rd)
                    assert io.ok
                    done.append(io)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len({id(io) for io in done}) == 400
        assert [a - b for a, b in zip(counts(ch), before)] == [400, 400, 0, 400]
        assert not ch._sync_busy and len(ch._sync_callers) <= 4


@pytest.mark.parametrize("make", [command.TestUnitReady, lambda: command.Read10(lba=8, transfer_length=1)],
                         ids=["tur", "read"])
def test_ctrl_c_at_any_instruction_of_execute_leaves_nothing_half_done(sg_device, make):
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open_ready(sg_device, block_size=BLOCK) as ch:
            cmd = make()
            ch.execute(cmd)  # the fast path from now on
            code = Channel.execute.__code__
            at = 0
            interrupted = 0
            left_at = []
            while True:
                before = counts(ch)
                try:
                    end = run_with_signal_at(lambda: ch.execute(cmd), {code}, at)
                except KeyboardInterrupt:
                    end = None
                    interrupted += 1
                else:
                    if end is None and _interrupt.PENDING:
                        # Raised before execute's very last instruction (its return), after it
                        # read PENDING: the tracer's handler ran in a frame above execute's and
                        # noted it.  Without a tracer no Python code runs there: the signal is
                        # handled in the caller's frame, as this deliver() from here does.
                        left_at.append(at)
                        with pytest.raises(KeyboardInterrupt):
                            _interrupt.deliver()
                        interrupted += 1
                    assert end is not None or left_at[-1:] == [at], f"SIGINT at instruction {at} was lost"
                s, c, f, t = (a - b for a, b in zip(counts(ch), before))
                assert (s, c, f, t) in ((0, 0, 0, 0), (1, 1, 0, 1)), f"SIGINT at instruction {at}: {(s, c, f, t)}"
                assert not _interrupt.PENDING, f"SIGINT at instruction {at} was left pending"
                assert not ch._sync_busy and ch._sync_callers, f"SIGINT at instruction {at} kept a caller"
                assert ch.outstanding == 0 and ch.reactor.outstanding == 0
                if end is not None:
                    break
                at += 1
            assert at > 100 and interrupted == at  # walked all of it, and every signal came out once
            assert left_at == [at - 1]  # only at the return itself
            assert ch.execute(cmd).ok  # and the channel goes on
    finally:
        signal.signal(signal.SIGINT, old)
        del _interrupt.PENDING[:]


@pytest.mark.parametrize("make", [command.TestUnitReady, lambda: command.Read10(lba=8, transfer_length=1),
                                  lambda: command.Write10(lba=8, transfer_length=1, data=bytes(BLOCK))],
                         ids=["tur", "read", "write"])
def test_ctrl_c_at_any_instruction_of_an_asynchronous_execute_sends_once_or_not_at_all(sg_device, make):
    # The asynchronous fast path (a remembered command) and, for the write, a command checked
    # on the fast path but sent by the general path's submission: a SIGINT at each instruction
    # of execute, the submission, the fd choice and the C call's wrapper.  The command is sent
    # once or not at all, comes back, and the interruption comes out once.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open_ready(sg_device, block_size=BLOCK) as ch:
            cmd = make()
            ch.execute(cmd, async_=True).wait()  # checked and remembered from now on
            codes = {Channel.execute.__code__, Channel._submit.__code__, SgPool.idle_fd.__code__,
                     SgFd.submit_one.__code__}
            at = 0
            interrupted = 0
            left_at = []
            while True:
                before = counts(ch)
                got = []
                try:
                    end = run_with_signal_at(lambda: got.append(ch.execute(cmd, async_=True)), codes, at)
                except KeyboardInterrupt:
                    end = None
                    interrupted += 1
                else:
                    if end is None and _interrupt.PENDING:
                        left_at.append(at)  # see the synchronous test above
                        with pytest.raises(KeyboardInterrupt):
                            _interrupt.deliver()
                        interrupted += 1
                    assert end is not None or left_at[-1:] == [at], f"SIGINT at instruction {at} was lost"
                assert ch.reactor.wait(timeout=30)  # whatever was sent comes back
                s, c, f, t = (a - b for a, b in zip(counts(ch), before))
                assert (s, c, f, t) in ((0, 0, 0, 0), (1, 1, 0, 1)), f"SIGINT at instruction {at}: {(s, c, f, t)}"
                assert not got or (got[0].ok and (s, c, f, t) == (1, 1, 0, 1))
                assert not _interrupt.PENDING, f"SIGINT at instruction {at} was left pending"
                assert ch.outstanding == 0 and ch.reactor.outstanding == 0 and not ch.transport.queue
                assert all(len(st.free) == SG_MAX_QUEUE and not st.inflight for st in ch.transport.endpoints)
                if end is not None:
                    break
                at += 1
            assert at > 100 and interrupted == at  # walked all of it, and every signal came out once
            assert left_at == [at - 1]  # only at the return itself
            assert ch.execute(cmd, async_=True).wait() is None  # and the channel goes on
    finally:
        signal.signal(signal.SIGINT, old)
        del _interrupt.PENDING[:]


def test_asynchronous_commands_seen_before_read_the_medium_and_run_their_handlers(sg_device):
    with open_ready(sg_device, block_size=BLOCK) as ch:
        data = b"".join(struct.pack(">Q", 2000 + i) * (BLOCK // 8) for i in range(8))
        ch.execute(command.Write10(lba=2000, transfer_length=8, data=data))
        reads = [command.Read10(lba=2000 + i, transfer_length=1) for i in range(8)]
        for _ in range(3):  # the first round checks each command, the others reuse the check
            ios = [ch.execute(rd, async_=True) for rd in reads]
            ch.reactor.wait(ios)
            assert [io.data for io in ios] == [data[i * BLOCK:(i + 1) * BLOCK] for i in range(8)]
            assert len({id(io.data_buf.obj) for io in ios}) == 8
        seen = []
        reads[0].add_handler(seen.append)
        io = ch.execute(reads[0], async_=True)
        io.wait()
        assert seen == [io]
        release = command.Release6()
        ch.execute(release, async_=True).wait()
        ch.read_only = True  # a RELEASE seen before is checked against the new setting
        with pytest.raises(UnsafeCommand):
            ch.execute(release, async_=True)
        assert ch.outstanding == 0


def test_max_fds_set_later_is_checked_and_bounds_the_pool(sg_device):
    with open_ready(sg_device, block_size=BLOCK) as ch:
        for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)):
            with pytest.raises(error, match="max_fds"):
                ch.max_fds = bad
            assert ch.max_fds == 16  # unchanged
        ch.max_fds = 2
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(40)], async_=True)
        ch.reactor.wait(ios)
        assert all(io.ok for io in ios)
        assert len(ch.transport.endpoints) <= 2


def test_a_done_callback_on_a_full_fd_submits_its_next_command_at_once(sg_device):
    """The completing command no longer counts: its slot is free before its callbacks run."""
    with open_ready(sg_device, block_size=BLOCK, max_fds=1) as ch:
        rd = command.Read10(lba=0, transfer_length=1)
        left = [400]
        queued_at_submit = []
        done = []

        def on_done(io):
            done.append(io)
            if left[0] > 0:
                left[0] -= 1
                nxt = ch.execute(rd, async_=True)
                queued_at_submit.append(len(ch.transport.queue))
                nxt.add_done_callback(on_done)

        for _ in range(16):  # one fd, 16 in flight: the kernel's limit per fd
            left[0] -= 1
            ch.execute(rd, async_=True).add_done_callback(on_done)
        ch.reactor.wait()
        assert len(done) == 400 and all(io.ok for io in done)
        assert queued_at_submit and not any(queued_at_submit)
        assert len(ch.transport.endpoints) == 1 and ch.outstanding == 0


@pytest.mark.parametrize("kind", ["block", "bsg"])
def test_block_and_bsg_nodes_take_the_fast_path_with_the_same_outcomes(sg_device, kind):
    import glob
    import os

    sysdev = f"/sys/class/scsi_generic/{os.path.basename(sg_device)}/device"
    if kind == "block":
        node = "/dev/" + os.path.basename(sorted(glob.glob(f"{sysdev}/block/*"))[0])
    else:
        node = "/dev/bsg/" + os.path.basename(os.path.realpath(sysdev))
    data = struct.pack(">Q", 77) * (BLOCK // 8)
    with Channel.from_path(node, block_size=BLOCK) as ch:
        assert ch.kind == kind
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        ch.execute(command.Write10(lba=77, transfer_length=1, data=data))
        tur, rd = command.TestUnitReady(), command.Read10(lba=77, transfer_length=1)
        beyond = command.Read16(lba=0xFFFFFFFF, transfer_length=1)
        before = counts(ch)
        for _ in range(5):
            assert ch.execute(tur).ok
            io = ch.execute(rd)
            assert io.data == data and io.hdr.resid == 0
            with pytest.raises(IllegalRequest):
                ch.execute(beyond)
        assert [a - b for a, b in zip(counts(ch), before)] == [15, 10, 5, 15]
    with pytest.raises(ChannelClosed):
        ch.execute(tur)
