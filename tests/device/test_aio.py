"""The asyncio bridge on sandbox devices."""

import asyncio
import os
import struct
import threading

import pytest

from sgpy import Channel, Reactor, aio, command, handler, safety
from sgpy.errors import ChannelClosed, IllegalRequest, UnsafeCommand

BLOCK = 512


def pattern(lba):
    return struct.pack(">Q", lba) * (BLOCK // 8)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def prepare(path, blocks):
    """Write a recognisable pattern to the first ``blocks`` blocks (and eat the power-on UA)."""
    with Channel.from_path(path) as ch:
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        chunk = 64
        ch.execute_many([command.Write10(lba=lba, transfer_length=chunk,
                                         data=b"".join(pattern(i) for i in range(lba, lba + chunk)))
                         for lba in range(0, blocks, chunk)])


def reader_registered(loop, fd):
    """True while ``fd`` is watched by the loop's selector."""
    try:
        loop._selector.get_key(fd)  # noqa: SLF001 - only the test looks inside the loop
        return True
    except KeyError:
        return False


@pytest.mark.asyncio
async def test_open_await_and_close(sg_device):
    prepare(sg_device, 64)
    before = fd_count()
    async with aio.open(sg_device) as ch:
        assert repr(ch) == f"AsyncChannel({sg_device!r})"
        io = await ch.cmd.Inquiry()
        assert io.ok and io.result.vendor == "Linux"
        io = await ch.execute(command.Read10(lba=3, transfer_length=1))
        assert io.data == pattern(3)
        assert await ch.block_size() == BLOCK
        assert reader_registered(asyncio.get_running_loop(), ch.reactor.fileno())
    assert ch.closed and ch.channel.closed
    assert not reader_registered(asyncio.get_running_loop(), ch.reactor.fileno())
    assert fd_count() == before
    # the awaitable form, closed by hand
    ch = await aio.open(sg_device)
    try:
        assert (await ch.cmd.TestUnitReady()).ok
    finally:
        await ch.aclose()
        await ch.aclose()  # idempotent
    with pytest.raises(ChannelClosed):
        await ch.cmd.TestUnitReady()


@pytest.mark.asyncio
async def test_10000_concurrent_awaits_over_several_devices(sg_devices):
    assert len(sg_devices) >= 2
    blocks = 1024
    for path in sg_devices[:2]:
        prepare(path, blocks)
    seen = {}
    lock = threading.Lock()

    def count(io):
        with lock:
            seen[id(io)] = seen.get(id(io), 0) + 1

    async with aio.open(sg_devices[0], block_size=BLOCK) as a, aio.open(sg_devices[1], block_size=BLOCK) as b, \
            aio.open(sg_devices[0], block_size=BLOCK) as c, aio.open(sg_devices[1], block_size=BLOCK) as d:
        channels = [a, b, c, d]

        def read(i):
            cmd = command.Read10(lba=(i * 7) % blocks, transfer_length=1)
            cmd.add_handler(count)
            return channels[i % 4].execute(cmd)

        ios = await asyncio.gather(*(read(i) for i in range(10_000)))
        assert len(ios) == 10_000 and len({id(io) for io in ios}) == 10_000
        assert all(io.ok and io.data == pattern(io.command.lba) for io in ios)
        assert len(seen) == 10_000 and set(seen.values()) == {1}
        stats = a.reactor.statistics()
        assert stats["outstanding"] == 0 and stats["in_flight"] == 0 and stats["queued"] == 0


@pytest.mark.asyncio
async def test_failures_are_raised_by_the_await(sg_device):
    async with aio.open(sg_device) as ch:
        await ch.cmd.TestUnitReady(verify_handler=handler.might_fail)
        with pytest.raises(IllegalRequest) as info:
            await ch.cmd.Read16(lba=0xFFFFFFFF, transfer_length=1)
        assert info.value.asc == 0x21
        io = await ch.cmd.Read16(lba=0xFFFFFFFF, transfer_length=1, verify_handler=handler.might_fail)
        assert isinstance(io.error, IllegalRequest)
        with pytest.raises(IllegalRequest) as info:
            await ch.execute_many([command.Read10(lba=0, transfer_length=1),
                                   command.Read16(lba=0xFFFFFFFF, transfer_length=1),
                                   command.Read10(lba=1, transfer_length=1)])
        batch = info.value.batch
        assert len(batch) == 3 and all(io.returned for io in batch) and batch[0].ok and batch[2].ok
        ios = await ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(20)])
        assert all(io.ok for io in ios)


@pytest.mark.scsi_debug(delay=0, ndelay=2_000_000)  # 2 ms a command: tasks are cancelled mid-flight
@pytest.mark.asyncio
async def test_cancelling_loses_no_completion_and_completes_nothing_twice(sg_device):
    prepare(sg_device, 256)
    done = {}
    lock = threading.Lock()

    def count(io):
        with lock:
            done[id(io)] = done.get(id(io), 0) + 1

    async with aio.open(sg_device, block_size=BLOCK) as ch:
        start = ch.reactor.statistics()

        async def read(i):
            cmd = command.Read10(lba=i % 256, transfer_length=1)
            cmd.add_handler(count)
            return await ch.execute(cmd)

        tasks = [asyncio.ensure_future(read(i)) for i in range(600)]
        await asyncio.sleep(0.005)
        for t in tasks[::2]:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
        finished = [r for r in results if not isinstance(r, BaseException)]
        assert len(cancelled) + len(finished) == 600
        assert 100 <= len(cancelled) <= 300  # the first ones may have finished before they were cancelled
        assert all(io.ok and io.data == pattern(io.command.lba) for io in finished)
        # The cancelled commands were sent all the same; the reactor still collects them.
        for _ in range(500):
            if ch.reactor.statistics()["outstanding"] == 0:
                break
            await asyncio.sleep(0.01)
        stats = ch.reactor.statistics()
        assert stats["outstanding"] == 0 and stats["failed"] == start["failed"]
        assert stats["submitted"] - start["submitted"] == 600
        assert stats["completed"] - start["completed"] == 600
        assert len(done) == 600 and set(done.values()) == {1}, "a completion was lost or delivered twice"


@pytest.mark.scsi_debug(delay=0, ndelay=5_000_000)
@pytest.mark.asyncio
async def test_leaving_the_context_waits_for_commands_in_flight(sg_device):
    prepare(sg_device, 64)
    before = fd_count()
    async with aio.open(sg_device, block_size=BLOCK) as ch:
        ios = [ch.submit(command.Read10(lba=i, transfer_length=1)) for i in range(40)]
        task = asyncio.ensure_future(ch.wait(ios[0]))
        await asyncio.sleep(0)
        task.cancel()
    assert all(io.returned and io.ok for io in ios)
    assert all(io.data == pattern(i) for i, io in enumerate(ios))
    assert fd_count() == before
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_the_safety_policy_applies(sg_device):
    async with aio.open(sg_device, read_only=True) as ch:
        before = ch.reactor.statistics()["submitted"]
        with pytest.raises(UnsafeCommand, match="read_only"):
            await ch.cmd.Write10(lba=0, transfer_length=1, data=bytes(BLOCK))
        assert ch.reactor.statistics()["submitted"] == before
        assert (await ch.cmd.Read10(lba=0, transfer_length=1)).ok
    async with aio.open(sg_device, policy=safety.ALLOW_DATA_LOSS) as ch:
        assert (await ch.cmd.Write10(lba=0, transfer_length=1, data=bytes(BLOCK))).ok
        with pytest.raises(UnsafeCommand, match="FormatUnit can irreversibly destroy"):
            await ch.cmd.FormatUnit()


@pytest.mark.asyncio
async def test_the_block_size_is_learned_once_without_blocking(sg_device):
    prepare(sg_device, 64)
    async with aio.open(sg_device) as ch:
        before = ch.reactor.statistics()["submitted"]
        ios = await asyncio.gather(*(ch.cmd.Read10(lba=i, transfer_length=1) for i in range(50)))
        assert [io.data for io in ios] == [pattern(i) for i in range(50)]
        assert ch.reactor.statistics()["submitted"] - before == 51  # one READ CAPACITY(16) for all


@pytest.mark.asyncio
async def test_a_block_device_runs_in_the_executor(sg_device):
    from sgpy import devices

    node = devices.find(sg_device).device_node
    prepare(sg_device, 64)
    async with aio.open(node) as ch:
        assert ch.channel.sync_only
        io = await ch.cmd.Read10(lba=5, transfer_length=1)
        assert io.data == pattern(5)
        ios = await ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(4)])
        assert [io.data for io in ios] == [pattern(i) for i in range(4)]


@pytest.mark.asyncio
async def test_wait_on_an_io_of_a_plain_channel(sg_device):
    prepare(sg_device, 64)
    with Channel.from_path(sg_device) as ch:
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(30)], async_=True)
        got = await asyncio.gather(*(aio.wait(io) for io in ios))
        assert [io.data for io in got] == [pattern(i) for i in range(30)]
        assert not reader_registered(asyncio.get_running_loop(), ch.reactor.fileno())
        bad = ch.execute(command.Read16(lba=0xFFFFFFFF, transfer_length=1), async_=True)
        with pytest.raises(IllegalRequest):
            await aio.wait(bad)


@pytest.mark.asyncio
async def test_a_reactor_running_in_its_own_thread(sg_device):
    prepare(sg_device, 64)
    reactor = Reactor()
    reactor.start()
    try:
        async with aio.open(sg_device, reactor=reactor, block_size=BLOCK) as ch:
            assert not reader_registered(asyncio.get_running_loop(), reactor.fileno())
            ios = await asyncio.gather(*(ch.cmd.Read10(lba=i % 64, transfer_length=1) for i in range(500)))
            assert all(io.data == pattern(io.command.lba) for io in ios)
    finally:
        reactor.close()



@pytest.mark.asyncio
async def test_jobs_run_under_asyncio_beside_other_tasks(sg_devices):
    prepare(sg_devices[0], 64)
    before = fd_count()
    async with aio.open(sg_devices[0]) as a, aio.open(sg_devices[1]) as b:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        try:
            ja, jb, io = await asyncio.gather(
                a.run(command.Read10(lba=0, transfer_length=8), seconds=0.5, queue_depth=16, lba="random"),
                b.run(command.Read16(lba=0, transfer_length=8), count=3000, queue_depth=8, lba="sequential"),
                a.execute(command.Read10(lba=5, transfer_length=1)))
        finally:
            t.cancel()
        assert ja.returned and ja.stats.commands > 0 and ja.stats.errors == 0
        assert jb.stats.commands == 3000
        assert io.data == pattern(5)
        assert ticks >= 10  # the loop kept running while the jobs ran
        assert a.channel._num_blocks == 64 * 1024 * 1024 // BLOCK
    assert fd_count() == before


@pytest.mark.scsi_debug(medium_error_start=5000, medium_error_count=4)
@pytest.mark.asyncio
async def test_a_job_failure_is_raised_by_the_await(sg_device, scsi_debug):
    from sgpy.errors import MediumError

    scsi_debug.set(opts=2)
    async with aio.open(sg_device) as ch:
        with pytest.raises(MediumError) as info:
            await ch.run(command.Read16(lba=0, transfer_length=1), lba=list(range(4990, 5010)), queue_depth=4)
        assert info.value.command.lba == 5000
    async with aio.open(sg_device, read_only=True) as ro:
        with pytest.raises(UnsafeCommand):
            await ro.run(command.Write10(lba=0, transfer_length=1, data=bytes(BLOCK)), count=1)
