"""Lifecycle guarantees under races: close, hot unplug, Ctrl-C, jobs and fork.

Each test here proves one promise of docs/engine.rst or docs/jobs.rst that
an adversarial run once broke:

* close() racing synchronous commands in other threads: no command of the
  closed channel reaches any device, least of all another disk that got the
  old fd number (two scsi_debug hosts with a store each, so a misdirected
  WRITE shows on the wrong medium);
* hot unplug with commands queued in user space: every pending IO fails
  exactly once with DeviceGone, nothing hangs (synchronous execute_many,
  reactor.wait, an asyncio channel's exit, an execute right after);
* KeyboardInterrupt at any point of a wait (a timer signal) or from a
  handler: nothing read from the kernel is lost, a later wait completes the
  same IOs with their real outcome;
* close() ends the channel's jobs, synchronous ones in other threads too,
  with ChannelClosed, and nothing is sent after it returned;
* fork(): the child cannot use what it inherited (a named error), and
  closing it there leaves the parent's epoll and commands alone.

Races are widened with slow completions (scsi_debug ``ndelay``), many
threads and many rounds, and bounded in time.
"""

import asyncio
import collections
import os
import random
import signal
import struct
import threading
import time

import pytest

import sgpy
from sgpy import Channel, Reactor, aio, command, errors, handler
from sgpy.errors import ChannelClosed, CommandTimeout, DeviceGone, SgError, UnitAttention
from sgpy.reactor import default_reactor
from sgpy.sandbox import guest

BLOCK = 512
TWO_DISKS = dict(add_host=2, per_host_store=1, num_tgts=1)


def pattern(lba, tag=0):
    return struct.pack(">QQ", lba, tag) * (BLOCK // 16)


def hctl(path):
    name = os.path.basename(path)
    return os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{name}/device"))


def open_ready(path, **options):
    """A channel on ``path`` past its power-on unit attentions."""
    options.setdefault("block_size", BLOCK)
    ch = Channel.from_path(path, **options)
    for _ in range(10):
        io = ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        if io.error is None:
            return ch
        if not isinstance(io.error, UnitAttention):
            ch.close()
            raise io.error
    ch.close()
    raise AssertionError(f"{path} keeps reporting unit attentions")


def slow_down(scsi_debug, ndelay):
    # delay=0 first, so that restoring ends with delay=0 (scsi_debug.c, ndelay_store).
    scsi_debug.set(delay=0)
    scsi_debug.set(ndelay=ndelay)


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


# -- defect: close() racing synchronous execute() ------------------------------------


@pytest.mark.scsi_debug(**TWO_DISKS)
def test_close_racing_synchronous_writes_never_writes_another_disk(sg_devices):
    """Claim (engine.rst, What happens on failure): once close() returns, no command of
    that channel reaches any device; an fd is closed only when no thread can still be
    inside a system call on it."""
    a_path, b_path = sg_devices[0], sg_devices[1]
    writers = 12
    mark = b"channel A only".ljust(BLOCK, b"A")
    with open_ready(b_path) as b:
        b.cmd.Write10(lba=0, transfer_length=writers, data=bytes(writers * BLOCK))

    stop = threading.Event()

    def churn():
        # Take whatever fd numbers close() frees, on the other disk.
        while not stop.is_set():
            fds = [os.open(b_path, os.O_RDWR | os.O_NONBLOCK) for _ in range(writers)]
            for fd in fds:
                os.close(fd)

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    changed = []
    rounds = 0
    serial = iter(range(1, 1 << 62))
    reader = open_ready(a_path)
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline:
            ch = open_ready(a_path)

            def write(k, ch=ch):
                while True:
                    # Each WRITE carries its own serial number, so a late one shows on the medium.
                    data = (mark[:16] + struct.pack(">QQ", k, next(serial))).ljust(BLOCK, b"A")
                    try:
                        ch.execute(command.Write10(lba=k, transfer_length=1, data=data))
                    except (ChannelClosed, SgError, OSError):
                        return

            threads = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(writers)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.0, 0.02))
            ch.close()
            at_close = reader.cmd.Read10(lba=0, transfer_length=writers).data
            for t in threads:
                t.join(10)
                assert not t.is_alive(), "a writer hangs after close()"
            if reader.cmd.Read10(lba=0, transfer_length=writers).data != at_close:
                changed.append(rounds)  # a WRITE reached disk A after close() returned
            rounds += 1
    finally:
        stop.set()
        churner.join(5)
        reader.close()
    with open_ready(b_path) as b:
        got = b.cmd.Read10(lba=0, transfer_length=writers).data
    wrong = [k for k in range(writers) if got[k * BLOCK:k * BLOCK + 16] == mark[:16]]
    assert not wrong, f"channel A's WRITE landed on disk B at LBAs {wrong} ({rounds} rounds)"
    assert not changed, f"disk A changed after close() returned in rounds {changed} of {rounds}"
    assert rounds >= 5


def test_closed_channel_hands_out_no_fd(sg_device, reactor):
    """A closed channel opens no fd and queues nothing, whichever path asks (an async
    execute that passed its entry check before close() took the lock lands here)."""
    ch = open_ready(sg_device, reactor=reactor)
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.execute(command.TestUnitReady(), async_=True)
    with reactor.lock:
        assert ch.transport.idle_fd() is None
        assert ch.transport._open_pool_fd() is None
    with pytest.raises(ChannelClosed):
        ch.open_fd()
    assert not ch.transport.endpoints and not ch.transport.queue and not ch._sync_fds


# -- defect: hot unplug with commands queued ------------------------------------------


@pytest.mark.scsi_debug(num_tgts=2)
def test_unplug_with_queued_ios_fails_each_once_and_nothing_hangs(sg_devices, scsi_debug, unplug, reactor):
    """Claim (engine.rst): on device removal every pending IO of that channel fails
    exactly once with DeviceGone; nothing hangs."""
    dev = sg_devices[0]
    ch = open_ready(dev, reactor=reactor, max_fds=2)
    slow_down(scsi_debug, 40_000_000)  # 40 ms per command
    seen = collections.Counter()

    def once(io):
        seen[id(io)] += 1
        handler.might_fail(io)

    ios = ch.execute_many([command.Read10(lba=i % 64, transfer_length=1) for i in range(600)], async_=True)
    for io in ios:
        io.verify_handler = once
    sync_result = []

    def sync_many():
        try:
            ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(200)])
            sync_result.append("ok")
        except DeviceGone:
            sync_result.append("gone")
        except BaseException as exc:  # noqa: BLE001 - reported below
            sync_result.append(exc)

    t_sync = threading.Thread(target=sync_many, daemon=True)
    t_sync.start()
    time.sleep(0.3)
    deleter = threading.Thread(target=unplug.delete, args=(dev,), daemon=True)
    deleter.start()
    try:
        assert reactor.wait(ios, timeout=15), \
            f"{sum(not io.returned for io in ios)} of {len(ios)} IOs never returned after the unplug"
        late = ch.execute(command.Read10(lba=0, transfer_length=1), async_=True) \
            if not ch.gone else None
    except DeviceGone:
        late = None
    t_sync.join(15)
    deleter.join(15)
    assert not t_sync.is_alive(), "synchronous execute_many hangs after the unplug"
    assert sync_result in (["gone"], ["ok"]), sync_result
    if late is not None:
        assert reactor.wait([late], timeout=5), "an execute right after the unplug never returned"
        assert isinstance(late.error, DeviceGone)
    with pytest.raises(DeviceGone):
        ch.execute(command.Read10(lba=0, transfer_length=1), async_=True)
    assert all(n == 1 for n in seen.values())
    gone = [io for io in ios if isinstance(io.error, DeviceGone)]
    assert len(seen) == len(ios) and gone, (len(seen), len(gone))
    assert all(io.error is None or isinstance(io.error, DeviceGone) for io in ios)
    assert reactor.wait(timeout=5), reactor.statistics()
    ch.close()


@pytest.mark.scsi_debug(num_tgts=2)
def test_unplug_lets_an_asyncio_channel_exit(sg_devices, scsi_debug, unplug):
    """``async with aio.open(...)`` exits after an unplug with commands queued."""
    dev = sg_devices[0]
    open_ready(dev).close()
    slow_down(scsi_debug, 40_000_000)

    async def main():
        loop = asyncio.get_running_loop()
        async with aio.open(dev, block_size=BLOCK, max_fds=1) as ch:
            ios = [ch.submit(command.Read10(lba=i % 64, transfer_length=1)) for i in range(300)]
            await asyncio.sleep(0.3)
            await loop.run_in_executor(None, unplug.delete, dev)
            done = await asyncio.gather(*(ch.wait(io) for io in ios), return_exceptions=True)
            assert all(isinstance(r, DeviceGone) or r is io for r, io in zip(done, ios))
            with pytest.raises(DeviceGone):
                await ch.cmd.Read10(lba=0, transfer_length=1)
        return True

    assert asyncio.run(asyncio.wait_for(main(), 20))


# -- defect: Ctrl-C during a wait --------------------------------------------------


def test_keyboard_interrupt_during_waits_loses_no_completion(sg_device, scsi_debug, reactor):
    """Claim (engine.rst): a KeyboardInterrupt during a wait loses nothing; a later
    wait completes the same IOs with their real outcome."""
    ch = open_ready(sg_device, reactor=reactor, max_fds=4)
    ch.cmd.Write10(lba=0, transfer_length=64, data=b"".join(pattern(i) for i in range(64)))
    slow_down(scsi_debug, 200_000)  # 0.2 ms: completions arrive all through each wait
    delivered = collections.Counter()
    interrupts = 0
    rng = random.Random(6)

    armed = [False]

    def on_alarm(signum, frame):
        if armed[0]:
            raise KeyboardInterrupt

    def count(io):
        delivered[id(io)] += 1

    def sometimes_interrupt(io):
        if io.command.lba % 29 == 5:
            raise KeyboardInterrupt  # a handler interrupted by Ctrl-C

    old = signal.signal(signal.SIGALRM, on_alarm)
    sgpy.defer_signal(signal.SIGALRM)  # held back like Ctrl-C while the engine's bookkeeping runs
    all_ios = []
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline:
            cmds = [command.Read10(lba=rng.randrange(64), transfer_length=1, handlers=[sometimes_interrupt])
                    for _ in range(48)]
            ios = ch.execute_many(cmds, async_=True)
            for io in ios:
                io.add_done_callback(count)
            all_ios.extend(ios)
            while True:
                try:
                    try:
                        armed[0] = True
                        signal.setitimer(signal.ITIMER_REAL, rng.uniform(20e-6, 2e-3))
                        done = reactor.wait(ios, timeout=5)
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                        armed[0] = False  # a signal already pending must not raise outside
                    break
                except KeyboardInterrupt:
                    interrupts += 1
            assert done, f"{sum(not io.returned for io in ios)} IOs lost after {interrupts} interrupts"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        ch.close()  # whatever failed: the device must be free for the next scsi_debug reload
    assert interrupts > 50
    assert all(io.returned for io in all_ios)
    # Every IO finished exactly once with the device's answer (above), and its done callback
    # ran exactly once.
    counts = collections.Counter(delivered[id(io)] for io in all_ios)
    assert set(counts) == {1}, f"done callbacks ran (times: IOs) {dict(counts)} after {interrupts} interrupts"
    for io in all_ios:  # the real outcome: the pattern written at the LBA, or the handler's interruption
        assert io.error is None and io.data == pattern(io.command.lba)
    timeouts = [io for io in all_ios if isinstance(io.error, CommandTimeout)]
    assert not timeouts, (len(timeouts), time.monotonic(), [io._submitted_at for io in timeouts[:3]], reactor.statistics())
    for io in all_ios:
        assert io.error is None and io.hdr is not None and io.data == pattern(io.command.lba), io
    stats = reactor.statistics()
    assert stats["outstanding"] == 0 and stats["in_flight"] == 0 and stats["abandoned"] == 0, stats


# -- defect: close() ends jobs ------------------------------------------------------


def test_close_ends_a_synchronous_job_in_another_thread(sg_device, scsi_debug):
    """Claim (jobs.rst): closing the channel ends its jobs with ChannelClosed; nothing
    reaches the device after close() returns."""
    ch = open_ready(sg_device)
    slow_down(scsi_debug, 1_000_000)
    outcome = []

    def run():
        try:
            ch.run(command.Read10(lba=0, transfer_length=8), seconds=15, queue_depth=8, lba="random",
                   lba_range=(0, 1024))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(1.0)
    jobs = list(ch.transport.jobs)
    t0 = time.monotonic()
    ch.close()
    closed_after = time.monotonic() - t0
    sent_at_close = [j.stats.submitted for j in jobs]
    time.sleep(0.5)
    t.join(5)
    assert not t.is_alive(), "the job kept running after close()"
    assert jobs, "the synchronous job is not one of the channel's jobs"
    assert [j.stats.submitted for j in jobs] == sent_at_close, "commands were sent after close() returned"
    assert all(j.returned for j in jobs)
    assert len(outcome) == 1 and isinstance(outcome[0], ChannelClosed), outcome
    assert closed_after < 5


def test_close_ends_an_async_job_with_channel_closed(sg_device, scsi_debug, reactor):
    ch = open_ready(sg_device, reactor=reactor)
    slow_down(scsi_debug, 1_000_000)
    job = ch.run(command.Read10(lba=0, transfer_length=8), seconds=15, queue_depth=8, lba="random",
                 lba_range=(0, 1024), async_=True)
    reactor.wait(timeout=0.5)
    ch.close()
    assert job.returned
    assert isinstance(job.exception, ChannelClosed), job.exception
    with pytest.raises(ChannelClosed):
        job.wait(1)


# -- defect: fork() -----------------------------------------------------------------


def _in_child(fn):
    """Run ``fn`` in a forked child; return its exit status (0: fn returned True)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = 0 if fn() else 1
        except BaseException as exc:  # noqa: BLE001 - the status says it
            os.write(2, f"child: {exc!r}\n".encode())
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_fork_child_cannot_use_inherited_channels_and_leaves_the_parent_alone(sg_device, scsi_debug, reactor):
    """Claim (engine.rst, fork): inherited channels and reactors are unusable in the
    child, with InheritedChannel; closing them there closes only the child's copies of
    the fds and never changes the parent's epoll."""
    inherited = getattr(errors, "InheritedChannel", ChannelClosed)
    ch = open_ready(sg_device, reactor=reactor)
    default_ch = open_ready(sg_device)
    ch.cmd.Write10(lba=0, transfer_length=16, data=b"".join(pattern(i) for i in range(16)))
    slow_down(scsi_debug, 300_000_000)  # 0.3 s: still in flight while the child closes
    ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(16)], async_=True)
    job = ch.run(command.Read10(lba=0, transfer_length=1), count=4, async_=True)

    def child():
        with pytest.raises(inherited):
            ch.execute(command.TestUnitReady())
        with pytest.raises(inherited):
            ch.execute(command.TestUnitReady(), async_=True)
        with pytest.raises(inherited):
            reactor.wait(timeout=0.1)
        with pytest.raises(inherited):
            ch.run(command.TestUnitReady(), count=1)
        t0 = time.monotonic()
        ch.close()
        default_ch.close()
        reactor.close()
        assert time.monotonic() - t0 < 0.2  # nothing drained: the commands are the parent's
        # The child gets a reactor of its own for new channels.
        assert default_reactor() is not default_ch.reactor
        with open_ready(sg_device) as mine:
            mine.cmd.Read10(lba=0, transfer_length=1)
        return True

    assert _in_child(child) == 0
    assert reactor.wait(ios, timeout=5), "the parent's IOs were lost when the child closed its copies"
    for i, io in enumerate(ios):
        assert io.error is None and io.data == pattern(i)
    job.wait(5)
    assert job.stats.commands == 4
    io = ch.execute(command.Read10(lba=3, transfer_length=1), async_=True)
    assert reactor.wait([io], timeout=5) and io.data == pattern(3)
    default_ch.cmd.TestUnitReady()
    ch.close()
    default_ch.close()
