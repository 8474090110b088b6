"""Hot unplug: a device deleted through sysfs while commands are in flight.

What the kernel does (Linux 6.1, drivers/scsi/scsi_sysfs.c
``__scsi_remove_device`` and drivers/scsi/sg.c): writing 1 to
``/sys/class/scsi_device/H:C:T:L/device/delete`` first unregisters the sg
class device, which marks the sg device detaching and wakes every open fd
(``sg_poll`` then reports EPOLLHUP, ``write()`` fails with ENODEV); only then
does it drain the request queue (``blk_mq_destroy_queue``), so the write to
``delete`` returns once the commands still in the LLD have completed.
Completions already done stay readable (``sg_read`` hands them out before it
looks at the detaching flag).

scsi_debug's ``ndelay`` (below one second) keeps commands in flight long
enough to delete the device under them.  Each test reloads scsi_debug with
its own parameters and, afterwards, rescans the host so the deleted device
comes back for whatever runs next.
"""

import collections
import os
import struct
import threading
import time

import pytest

from sgpy import Channel, Reactor, command, handler
from sgpy.errors import DeviceGone, UnitAttention
from sgpy.sandbox import guest

BLOCK = 512
IN_FLIGHT_NS = 500_000_000  # each command takes 0.5 s


def pattern(lba, size=BLOCK):
    return struct.pack(">Q", lba) * (size // 8)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def hctl(path):
    """``H:C:T:L`` of an sg node, from its sysfs device link."""
    name = os.path.basename(path)
    return os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{name}/device"))


def open_ready(path, **options):
    options.setdefault("block_size", BLOCK)
    ch = Channel.from_path(path, **options)
    for _ in range(10):  # consume power-on unit attentions
        io = ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        if io.error is None:
            return ch
        if not isinstance(io.error, UnitAttention):
            ch.close()
            raise io.error
    ch.close()
    raise AssertionError(f"{path} keeps reporting unit attentions")


def write_pattern(ch, count):
    ch.cmd.Write10(lba=0, transfer_length=count, data=b"".join(pattern(i) for i in range(count)))


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


@pytest.mark.scsi_debug(num_tgts=3)
def test_hot_unplug_fails_each_pending_io_once_and_spares_the_other_device(sg_devices, unplug, reactor):
    dev_a, dev_b = sg_devices[0], sg_devices[1]
    host_a, _, target_a, _ = hctl(dev_a).split(":")
    host_b, _, target_b, _ = hctl(dev_b).split(":")
    assert host_a == host_b and target_a != target_b
    fds_before = fd_count()
    a = [open_ready(dev_a, reactor=reactor) for _ in range(2)]
    b = [open_ready(dev_b, reactor=reactor) for _ in range(2)]
    deleter = None
    try:
        write_pattern(b[0], 32)  # one store behind every scsi_debug device
        before = reactor.statistics()
        unplug.slow_down(IN_FLIGHT_NS)

        verdicts = collections.Counter()

        def gone_once(io):
            verdicts[io] += 1
            handler.must_fail(exception=DeviceGone)(io)

        a_ios = [ch.execute(command.Read10(lba=i, transfer_length=1), async_=True, verify_handler=gone_once)
                 for ch in a for i in range(20)]
        b_ios = [ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(16)], async_=True)
                 for ch in b]
        assert not any(io.returned for io in a_ios)

        # Delete A from another thread while this one waits: the wait wakes
        # on EPOLLHUP, long before scsi_debug would have answered.
        start = time.monotonic()
        deleter = threading.Thread(target=unplug.delete, args=(dev_a,))
        deleter.start()
        assert reactor.wait(a_ios, timeout=10)
        assert time.monotonic() - start < IN_FLIGHT_NS / 1e9

        for io in a_ios:
            assert io.returned and isinstance(io.error, DeviceGone)
            assert io.exception is None and io.wait() is None  # gone_once accepted it
            assert dev_a in str(io.error)
        # Exactly once each, and still once after more waiting and polling.
        assert len(verdicts) == 40 and set(verdicts.values()) == {1}
        deleter.join(10)
        assert not deleter.is_alive()
        reactor.wait(timeout=10)
        reactor.poll()
        assert len(verdicts) == 40 and set(verdicts.values()) == {1}

        # A stays gone: its channels refuse work at once, its node is gone.
        for ch in a:
            with pytest.raises(DeviceGone):
                ch.cmd.TestUnitReady()
            with pytest.raises(DeviceGone):
                ch.execute(command.Read10(lba=0, transfer_length=1), async_=True)
            with pytest.raises(DeviceGone):
                ch.execute_many([command.TestUnitReady()], async_=True)
        with pytest.raises(FileNotFoundError, match=dev_a):
            Channel.from_path(dev_a)

        # B finished what it had in flight, with the right data, and goes on.
        for ios in b_ios:
            for lba, io in enumerate(ios):
                io.wait(timeout=10)
                assert io.ok and io.data == pattern(lba)
        for ch in b:
            assert ch.cmd.Read10(lba=5, transfer_length=1).data == pattern(5)

        s = reactor.statistics()
        assert s["failed"] - before["failed"] == 40
        assert s["completed"] - before["completed"] == 32 + 2
        assert (s["outstanding"], s["in_flight"], s["queued"]) == (0, 0, 0)
        assert s["channels"][dev_a]["fds"] == 0  # A's pool was closed when it went
    finally:
        if deleter is not None:
            deleter.join(10)
        for ch in a + b:
            ch.close()
    assert fd_count() == fds_before


@pytest.mark.scsi_debug(num_tgts=4)
def test_completions_the_kernel_holds_when_the_device_goes_are_delivered(sg_devices, unplug, reactor):
    dev_a = sg_devices[0]
    with open_ready(dev_a, reactor=reactor) as ch:
        write_pattern(ch, 32)
        unplug.slow_down(IN_FLIGHT_NS)
        verdicts = collections.Counter()

        def once(io):
            verdicts[io] += 1
            handler.might_fail(io)

        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1, verify_handler=once) for i in range(32)],
                              async_=True)
        assert reactor.statistics()["channels"][dev_a]["fds"] > 1  # spread over the pool's fds
        # Deleting from this thread: the write returns after the request
        # queue drained, so every command has completed with GOOD status and
        # waits to be read on its fd before the reactor looks at anything.
        unplug.delete(dev_a)
        ch.wait(timeout=10)
        assert len(verdicts) == 32 and set(verdicts.values()) == {1}
        outcomes = collections.Counter(type(io.error).__name__ for io in ios)
        assert outcomes == {"NoneType": 32}, outcomes
        assert all(io.data == pattern(i) for i, io in enumerate(ios))


@pytest.mark.scsi_debug(num_tgts=3)
@pytest.mark.parametrize("async_", [True, False])
def test_hot_unplug_ends_a_job_with_device_gone_and_spares_the_other_device(sg_devices, unplug, reactor,
                                                                            async_):
    dev_a, dev_b = sg_devices[0], sg_devices[1]
    fds_before = fd_count()
    a = open_ready(dev_a, reactor=reactor)
    b = open_ready(dev_b, reactor=reactor)
    deleter = None
    try:
        unplug.slow_down(IN_FLIGHT_NS // 10)  # 50 ms per command
        job_b = b.run(command.Read10(lba=0, transfer_length=1), count=40, queue_depth=8, lba="random",
                      async_=True)
        deleter = threading.Timer(0.3, unplug.delete, args=(dev_a,))
        deleter.start()
        start = time.monotonic()
        with pytest.raises(DeviceGone, match=dev_a):
            job_a = a.run(command.Read10(lba=0, transfer_length=1), seconds=60, queue_depth=8, lba="random",
                          async_=async_)
            job_a.wait(timeout=30)
        assert time.monotonic() - start < 10
        # The other device's job finished every command.
        assert job_b.wait(timeout=30).commands == 40
        with pytest.raises(DeviceGone):
            a.run(command.TestUnitReady(), count=1)
        assert reactor.statistics()["outstanding"] == 0
    finally:
        if deleter is not None:
            deleter.join(10)
        a.close()
        b.close()
    assert fd_count() == fds_before


@pytest.mark.scsi_debug(num_tgts=2)
@pytest.mark.parametrize("how", ["many", "each", "sync"])
def test_commands_offered_after_an_unplug_the_reactor_has_not_seen_fail_once_with_device_gone(
        sg_devices, unplug, reactor, how):
    """Regression: ``write()`` refusing a whole batch with ENODEV (the device was deleted and
    nothing has looked at its fd since) fails every IO of it exactly once with DeviceGone;
    none is dropped (they were once in neither the fd's in-flight table nor the queue)."""
    dev, other = sg_devices[0], sg_devices[1]
    ch = open_ready(dev, reactor=reactor, max_fds=1)
    bystander = open_ready(other, reactor=reactor)
    verdicts = collections.Counter()

    def once(io):
        verdicts[id(io)] += 1
        handler.might_fail(io)

    try:
        unplug.delete(dev)  # this thread drives the reactor: nothing has read the fd's EPOLLHUP yet
        cmds = [command.Read10(lba=i, transfer_length=1, verify_handler=once) for i in range(24)]
        if how == "sync":
            with pytest.raises(DeviceGone):
                ch.execute(cmds[0])
            with pytest.raises(DeviceGone):
                ch.execute(cmds[1])
            ios = []
        elif how == "many":
            ios = ch.execute_many(cmds, async_=True)
        else:
            ios = [ch.execute(cmds[0], async_=True)]  # the kernel refuses it: the channel is gone
            for c in cmds[1:]:
                with pytest.raises(DeviceGone):  # and says so at once for every later command
                    ch.execute(c, async_=True)
        assert reactor.wait(ios, timeout=10), f"{sum(not io.returned for io in ios)} of {len(ios)} IOs lost"
        assert all(isinstance(io.error, DeviceGone) for io in ios), [io.error for io in ios]
        assert set(verdicts.values()) <= {1} and len(verdicts) == len(ios)
        stats = reactor.statistics()
        assert stats["outstanding"] == 0 and stats["in_flight"] == 0, stats
        assert bystander.cmd.TestUnitReady().error is None  # the other device goes on
    finally:
        ch.close()
        bystander.close()
