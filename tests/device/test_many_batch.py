"""execute_many's synchronous batch path (sgpy/channel.py ``Channel._many``, sgpy/_sg.c ``sgpy_many_run``).

A synchronous ``execute_many`` of plain commands (checked before, no
handler, no writes) is sent and collected in one C loop over fds of the
channel's synchronous callers; only completions that are not plain come
back to Python one by one.  Each test compares the batch with what the
general path gives, or drives it into one of the cases the loop must
survive: failures mixed with successes, commands the device never answers,
several fds, threads, close() and Ctrl-C mid-batch, an unplug.
"""

import os
import signal
import struct
import sys
import threading
import time

import pytest

from sgpy import Channel, Reactor, _binding, _interrupt, command, handler
from sgpy.errors import ChannelClosed, CommandTimeout, DeviceGone, IllegalRequest, MediumError, TaskFailed
from sgpy.io import Input, NoDirectionIo

BLOCK = 512


def pattern(lba, blocks=1):
    return b"".join(struct.pack(">Q", lba + i) * (BLOCK // 8) for i in range(blocks))


def open_ready(path, **kw):
    kw.setdefault("block_size", BLOCK)
    ch = Channel.from_path(path, **kw)
    for _ in range(5):
        if ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail).error is None:
            break
    return ch


def write_pattern(ch, lba, blocks):
    ch.execute(command.Write10(lba=lba, transfer_length=blocks, data=pattern(lba, blocks)))


def counts(ch):
    r = ch.reactor
    return r.submitted, r.completed, r.failed, ch.submitted


def slow(scsi_debug, ns):
    scsi_debug.set(delay=0)
    scsi_debug.set(ndelay=ns)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


@pytest.fixture
def runs(monkeypatch):
    """How many batches went through the C loop."""
    seen = []
    real = _binding.ManyRun.run

    def run(self):
        seen.append(self.n)
        return real(self)

    monkeypatch.setattr(_binding.ManyRun, "run", run)
    return seen


@pytest.mark.parametrize("max_fds", [1, 4])
def test_a_batch_of_reads_returns_each_its_own_blocks_in_order(sg_device, runs, max_fds):
    with open_ready(sg_device, max_fds=max_fds) as ch:
        write_pattern(ch, 0, 128)
        order = [(i * 37) % 120 for i in range(120)]
        reads = [command.Read10(lba=lba, transfer_length=1 + lba % 8) for lba in order]
        before = counts(ch)
        ios = ch.execute_many(reads)
        assert runs, "the batch did not take the C loop"
        assert [a - b for a, b in zip(counts(ch), before)] == [120, 120, 0, 120]
        for lba, rd, io in zip(order, reads, ios):
            assert type(io) is Input and io.returned and io.ok and io.command is rd
            assert io.data == pattern(lba, 1 + lba % 8) and io.hdr.resid == 0
        # The general path (asynchronous) gives the same IOs.
        again = ch.execute_many(reads, async_=True)
        for io in again:
            io.wait()
        assert [io.data for io in again] == [io.data for io in ios]
        assert len({id(io.data_buf.obj) for io in ios if io.length >= 513}) >= 1
        ios[0].data_buf[:8] = b"\xff" * 8  # each IO owns its bytes
        assert ios[1].data == pattern(order[1], 1 + order[1] % 8)
        assert not ch._sync_busy and ch.outstanding == 0 and ch.reactor.outstanding == 0


def test_a_batch_uses_one_fd_per_16_commands_up_to_max_fds(sg_device, runs):
    with open_ready(sg_device, max_fds=3) as ch:
        tur = command.TestUnitReady()
        for n, fds in ((2, 1), (16, 1), (17, 2), (200, 3)):
            ios = ch.execute_many([tur] * n)
            assert len(ios) == n and all(type(io) is NoDirectionIo and io.ok for io in ios)
            assert len({id(io) for io in ios}) == n
            assert len(ch._sync_callers) >= fds
        assert runs == [2, 16, 17, 200]


def test_a_batch_of_new_commands_takes_the_c_loop_and_keeps_the_cache(sg_device, runs):
    with open_ready(sg_device) as ch:
        write_pattern(ch, 0, 64)
        tur = command.TestUnitReady()
        ch.execute(tur)
        ch.execute(tur)
        assert id(tur) in ch._plain
        lbas = [(i * 13) % 64 for i in range(3000)]
        ios = ch.execute_many([command.Read10(lba=lba, transfer_length=1) for lba in lbas])
        assert runs == [3000]
        assert [io.data for io in ios] == [pattern(lba) for lba in lbas]
        assert id(tur) in ch._plain and len(ch._plain) <= 1024  # not emptied by a batch


def test_a_batch_that_cannot_be_set_up_gives_its_callers_back(sg_device, monkeypatch):
    with open_ready(sg_device) as ch:
        tur = command.TestUnitReady()
        ch.execute_many([tur, tur])

        def no_memory(*args, **kwargs):
            raise MemoryError

        before = counts(ch)
        with monkeypatch.context() as m:
            m.setattr(_binding.ManyRun, "__init__", no_memory)
            with pytest.raises(MemoryError):
                ch.execute_many([tur] * 40)
        assert counts(ch) == before and not ch._sync_busy
        assert all(io.ok for io in ch.execute_many([tur] * 40))


def test_commands_with_handlers_writes_or_a_policy_take_the_general_path(sg_device, runs):
    with open_ready(sg_device) as ch:
        seen = []
        tur = command.TestUnitReady()
        tur.add_handler(seen.append)
        ios = ch.execute_many([tur, command.TestUnitReady()])
        assert seen == [ios[0]] and not runs
        ch.execute_many([command.Write10(lba=0, transfer_length=1, data=pattern(0)), command.TestUnitReady()])
        assert not runs
        ch.execute_many([command.TestUnitReady()], async_=True)[0].wait()
        assert not runs
        ch.execute_many([command.TestUnitReady(), command.TestUnitReady()])
        assert runs == [2]


def test_failures_in_a_batch_are_classified_and_the_first_is_raised_with_the_batch(sg_device, runs):
    with open_ready(sg_device) as ch:
        write_pattern(ch, 0, 8)
        beyond = command.Read16(lba=0xFFFFFFFF, transfer_length=1)
        cmds = [command.Read10(lba=i, transfer_length=1) for i in range(8)]
        cmds[2] = beyond
        cmds[6] = beyond
        before = counts(ch)
        with pytest.raises(IllegalRequest) as info:
            ch.execute_many(cmds)
        assert runs
        batch = info.value.batch
        assert info.value.io is batch[2]
        assert [a - b for a, b in zip(counts(ch), before)] == [8, 6, 2, 8]
        for i, io in enumerate(batch):
            assert io.returned and io.command is cmds[i]
            if i in (2, 6):
                assert isinstance(io.error, IllegalRequest) and io.hdr.status == 2 and io.hdr.sense
            else:
                assert io.ok and io.data == pattern(i)


MEDIUM = {"medium_error_start": 5000, "medium_error_count": 4}


@pytest.mark.scsi_debug(**MEDIUM)
def test_medium_errors_in_a_batch_carry_their_lba(sg_device, scsi_debug, runs):
    with open_ready(sg_device) as ch:
        scsi_debug.set(opts=2)
        try:
            cmds = [command.Read10(lba=4990 + i, transfer_length=1) for i in range(20)]
            with pytest.raises(MediumError) as info:
                ch.execute_many(cmds)
        finally:
            scsi_debug.set(opts=0)
        bad = [i for i, io in enumerate(info.value.batch) if io.error is not None]
        assert bad == [10, 11, 12, 13]
        assert [info.value.batch[i].sense.information for i in bad] == [5000, 5001, 5002, 5003]
        assert runs


def test_commands_the_device_drops_time_out_and_the_rest_succeed(sg_device, scsi_debug, runs):
    with open_ready(sg_device, timeout=1000) as ch:
        write_pattern(ch, 0, 8)
        scsi_debug.set(opts=4, every_nth=4)  # the 4th and the 8th read are never answered
        try:
            with pytest.raises(CommandTimeout) as info:
                ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(8)])
        finally:
            scsi_debug.set(every_nth=0)
        batch = info.value.batch
        timed_out = [i for i, io in enumerate(batch) if isinstance(io.error, CommandTimeout)]
        assert len(timed_out) == 2
        for i, io in enumerate(batch):
            if i not in timed_out:
                assert io.ok and io.data == pattern(i)
        assert ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(8)])[7].data == pattern(7)
        assert ch.outstanding == 0 and not ch._sync_busy


def test_threads_each_get_their_own_batch_whole(sg_device, runs):
    with open_ready(sg_device, max_fds=2) as ch:
        write_pattern(ch, 0, 64)
        before = counts(ch)
        errors = []

        def worker(k):
            try:
                for _ in range(10):
                    lbas = [(k * 16 + i) % 64 for i in range(40)]
                    ios = ch.execute_many([command.Read10(lba=lba, transfer_length=1) for lba in lbas])
                    assert [io.data for io in ios] == [pattern(lba) for lba in lbas]
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert [a - b for a, b in zip(counts(ch), before)] == [1600, 1600, 0, 1600]
        assert len(runs) == 40 and not ch._sync_busy


def test_close_mid_batch_sends_nothing_more_and_fails_the_rest_with_channel_closed(sg_device, scsi_debug, runs,
                                                                                  reactor):
    fds = fd_count()
    ch = open_ready(sg_device, max_fds=1, reactor=reactor)
    before = counts(ch)
    slow(scsi_debug, 20_000_000)  # 20 ms per command: 16 at a time, 400 take 0.5 s
    result = {}

    def batch():
        try:
            result["ios"] = ch.execute_many([command.TestUnitReady() for _ in range(400)])
        except BaseException as exc:
            result["exc"] = exc

    t = threading.Thread(target=batch)
    t.start()
    time.sleep(0.08)
    ch.close()
    t.join(30)
    assert not t.is_alive()
    exc = result["exc"]
    assert isinstance(exc, ChannelClosed)
    ios = exc.batch
    ok = [io for io in ios if io.ok]
    closed = [io for io in ios if isinstance(io.error, ChannelClosed)]
    assert len(ok) + len(closed) == 400 and ok and closed
    assert ios[:len(ok)] == ok  # sent in order: every success comes before the first one left unsent
    s, c, f, t = (a - b for a, b in zip(counts(ch), before))
    assert (s, c, f, t) == (len(ok), len(ok), len(closed), len(ok)) and ch.reactor.outstanding == 0
    assert fd_count() == fds  # the callers' fds closed with the channel


@pytest.mark.parametrize("how", ["sigint", "alarm"])
def test_ctrl_c_ends_a_batch_at_once_and_leaves_the_channel_whole(sg_device, scsi_debug, runs, how):
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    old_alarm = signal.signal(signal.SIGALRM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT)) \
        if how == "sigint" else signal.signal(signal.SIGALRM, lambda signum, frame: (_ for _ in ()).throw(
            KeyboardInterrupt))
    fds = fd_count()
    try:
        with open_ready(sg_device, max_fds=1) as ch:
            ch.execute_many([command.TestUnitReady()] * 20)  # the caller's fd exists now
            base = fd_count()
            slow(scsi_debug, 100_000_000)  # 0.1 s per command: the batch would take 10 s
            before = counts(ch)
            start = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, 0.25)
            with pytest.raises(KeyboardInterrupt):
                ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(1600)])
            assert time.monotonic() - start < 2
            s, c, f, t = (a - b for a, b in zip(counts(ch), before))
            assert s == c == t and f == 0 and 16 <= c < 1600  # what was read is counted, nothing else
            assert not ch._sync_busy and ch.outstanding == 0
            assert fd_count() == base - 1  # the fd still carrying commands was closed, not reused
            time.sleep(0.5)  # the orphans the kernel still had are done (scsi_debug refuses a new delay till then)
            slow(scsi_debug, 0)
            ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(40)])
            assert all(io.ok for io in ios)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGALRM, old_alarm)
    assert fd_count() == fds


@pytest.mark.scsi_debug(num_tgts=2)
def test_an_unplug_mid_batch_fails_the_rest_with_device_gone(sg_devices, unplug, runs, reactor):
    dev_a, dev_b = sg_devices[0], sg_devices[1]
    fds = fd_count()
    a = open_ready(dev_a, reactor=reactor)
    b = open_ready(dev_b, reactor=reactor)
    deleter = None
    try:
        unplug.slow_down(10_000_000)  # 10 ms per command
        deleter = threading.Timer(0.2, unplug.delete, args=(dev_a,))
        deleter.start()
        start = time.monotonic()
        # The first failure is raised: DeviceGone, or the error of a command the
        # vanishing device ended (DID_ERROR, DID_NO_CONNECT).
        with pytest.raises(TaskFailed) as info:
            a.execute_many([command.Read10(lba=i % 64, transfer_length=1) for i in range(2000)])
        assert time.monotonic() - start < 10
        ios = info.value.batch
        assert len(ios) == 2000 and all(io.returned for io in ios)
        assert isinstance(ios[-1].error, DeviceGone)
        # While the device goes, the kernel ends some commands in flight with
        # DID_ERROR and may still take a few more (the general path sees the
        # same); once write() says ENODEV nothing more is sent.
        assert all(io.ok or isinstance(io.error, TaskFailed) for io in ios)
        # Sent in order, and nothing once the device was seen going: every
        # command after the first one not sent is not sent either.
        unsent = [isinstance(io.error, DeviceGone) and "not sent" in str(io.error) for io in ios]
        first = unsent.index(True)
        assert all(unsent[first:]) and 0 < first < 2000
        assert reactor.outstanding == 0 and runs
        assert b.execute_many([command.TestUnitReady()] * 20)[19].ok
    finally:
        if deleter is not None:
            deleter.join(10)
        a.close()
        b.close()
    assert fd_count() == fds


def test_ctrl_c_at_any_instruction_of_a_batch_leaves_nothing_half_done(sg_device, runs):
    """SIGINT raised at every bytecode instruction of the batch path, one further each run."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from signal_trace import run_with_signal_at

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open_ready(sg_device, max_fds=1) as ch:
            beyond = command.Read16(lba=0xFFFFFFFF, transfer_length=1)
            cmds = [command.TestUnitReady(), command.Read10(lba=3, transfer_length=1), beyond]
            with pytest.raises(IllegalRequest):
                ch.execute_many(cmds)  # every command seen once: the batch path from now on
            base = fd_count()
            codes = {f.__code__ for f in (Channel.execute_many, Channel.execute_many.__wrapped__, Channel._many,
                                          Channel._take_callers, Channel._many_run, Channel._many_parked,
                                          Channel._many_over)}
            at = 0
            interrupted = 0
            while True:
                before = counts(ch)
                try:
                    end = run_with_signal_at(lambda: ch.execute_many(cmds), codes, at)
                except KeyboardInterrupt:
                    end = None
                    interrupted += 1
                except IllegalRequest as exc:
                    end = None
                    if _interrupt.PENDING:  # noted after the entry's last look (see test_sync_fast_path)
                        with pytest.raises(KeyboardInterrupt):
                            _interrupt.deliver()
                        interrupted += 1
                    else:
                        assert exc.io is exc.batch[2] and exc.batch[1].data == exc.batch[1].data
                        end = at
                s, c, f, t = (a - b for a, b in zip(counts(ch), before))
                assert s == c + f and t == s and s <= 3, f"SIGINT at instruction {at}: {(s, c, f, t)}"
                assert not _interrupt.PENDING, f"SIGINT at instruction {at} was left pending"
                assert not ch._sync_busy and ch.outstanding == 0 and ch.reactor.outstanding == 0
                assert fd_count() <= base, f"SIGINT at instruction {at} left an fd open"
                if end is not None:
                    assert (s, c, f) == (3, 2, 1)
                    break
                at += 1
            assert at > 200 and interrupted == at
            assert runs
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_batch_that_hears_nothing_for_its_stall_time_ends_and_closes_the_busy_fd(sg_device, scsi_debug, runs,
                                                                                   monkeypatch, reactor):
    # The C loop's own watchdog: no completion for timeout + WATCHDOG_GRACE ends the batch.  The grace
    # is made negative here so that the stall time (0.5 s) comes before the device answers (0.9 s)
    # and before the kernel's own timeout (5 s): the kernel still holds every command sent.
    import sgpy.channel as channel_module

    fds = fd_count()
    with open_ready(sg_device, max_fds=1, timeout=5000, reactor=reactor) as ch:
        ch.execute_many([command.TestUnitReady()] * 20)  # the caller's fd exists now
        base = fd_count()
        before = counts(ch)
        monkeypatch.setattr(channel_module, "WATCHDOG_GRACE", -4.5)
        slow(scsi_debug, 900_000_000)
        start = time.monotonic()
        try:
            with pytest.raises(CommandTimeout) as info:
                ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(40)])
            elapsed = time.monotonic() - start
        finally:
            monkeypatch.undo()
        assert 0.4 < elapsed < 0.85, elapsed
        ios = info.value.batch
        assert info.value.io is ios[0] and runs
        sent = [io for io in ios if isinstance(io.error, CommandTimeout)]
        unsent = [io for io in ios if not isinstance(io.error, CommandTimeout)]
        assert len(sent) == 16 and ios[:16] == sent  # one fd: sg's 16 in flight, in order
        assert all(type(io.error) is TaskFailed and "not sent" in str(io.error) for io in unsent)
        assert all("execute_many's watchdog" in str(io.error) for io in ios)
        s, c, f, t = (a - b for a, b in zip(counts(ch), before))
        assert (s, c, f, t) == (16, 0, 40, 16) and ch.reactor.outstanding == 0 and not ch._sync_busy
        assert fd_count() == base - 1  # the fd the kernel still holds commands on was closed
        time.sleep(1.2)  # the orphans are done (scsi_debug refuses a new delay till then)
        slow(scsi_debug, 0)
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(40)])
        assert all(io.ok for io in ios)
    assert fd_count() == fds


def test_a_command_the_kernel_refuses_fails_alone_and_the_rest_of_the_batch_goes_on(sg_device, runs):
    # A 64 MiB READ: within sg's 256 MiB and this queue's limits as sysfs states them, but the
    # block layer cannot map it into one request and sg's write() fails with EINVAL (measured
    # in the sandbox: 8 MiB passes, 16 MiB and more are refused), before anything reaches the device.
    with open_ready(sg_device, max_fds=1) as ch:
        write_pattern(ch, 0, 40)
        ch._max_transfer = max(ch.max_transfer, 1 << 30)  # sgpy's own check passes, whatever it finds
        too_long = command.Read16(lba=0, transfer_length=(64 << 20) // BLOCK)
        cmds = [command.Read10(lba=i, transfer_length=1) for i in range(40)]
        cmds.insert(20, too_long)
        before = counts(ch)
        with pytest.raises(TaskFailed, match="the kernel refused the command|memory") as info:
            ch.execute_many(cmds)
        ios = info.value.batch
        assert info.value.io is ios[20] and ios[20].error is info.value and runs
        assert "split it into smaller commands" in str(info.value)
        assert [io.data for i, io in enumerate(ios) if i != 20] == [pattern(i) for i in range(40)]
        s, c, f, t = (a - b for a, b in zip(counts(ch), before))
        assert (s, c, f, t) == (40, 40, 1, 40) and ch.reactor.outstanding == 0 and not ch._sync_busy


def test_a_transfer_the_kernel_refuses_says_so_alike_on_every_path(sg_device, reactor):
    # The same 16 MiB READ refused by the kernel (see above): synchronous SG_IO, an asynchronous
    # command and a batch all fail with the same TaskFailed, and the channel goes on.
    with open_ready(sg_device, reactor=reactor) as ch:
        ch._max_transfer = max(ch.max_transfer, 1 << 30)
        too_long = command.Read16(lba=0, transfer_length=(16 << 20) // BLOCK)
        messages = set()
        with pytest.raises(TaskFailed) as sync:
            ch.execute(too_long)
        messages.add(str(sync.value))
        io = ch.execute(too_long, async_=True)
        with pytest.raises(TaskFailed) as async_:
            io.wait()
        messages.add(str(async_.value))
        with pytest.raises(TaskFailed) as many:
            ch.execute_many([command.TestUnitReady(), too_long])
        messages.add(str(many.value))
        assert len(messages) == 1
        message = messages.pop()
        assert "Invalid argument (errno 22)" in message
        assert f"of at most {ch.assured_transfer} bytes (the queue's max_segments pages" in message
        assert ch.execute(command.Read10(lba=0, transfer_length=1)).ok
