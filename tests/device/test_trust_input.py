"""Bad input never reaches the kernel, never corrupts a channel, never changes what a disk holds.

Regression tests of issue 12's engine defects 1 (CDB lengths), 4 (data
buffers), 5 (timeouts), 10 (the transfer-length cache) and 16 (errors on
bad input).  Where a defect corrupted memory or replayed a command, the test
reads the medium back through another channel and checks its exact bytes.
"""

import asyncio
import gc
import math
import struct
import tracemalloc

import pytest

from sgpy import Channel, aio, command, errors, handler, safety
from sgpy.constants import Direction

BLOCK = 512


def stamp(lba, tag, blocks=1):
    """Recognisable block contents: each 8 bytes say (tag, lba)."""
    return b"".join(struct.pack(">II", tag, lba + i) * (BLOCK // 8) for i in range(blocks))


def open_ready(path, **kw):
    ch = Channel.from_path(path, **kw)
    ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
    return ch


def medium(path, lba, blocks=1):
    """What the disk holds, read through a channel of its own."""
    with open_ready(path) as ch:
        return ch.cmd.Read10(lba=lba, transfer_length=blocks).data


def write10_raw(lba, data):
    cdb = bytes([0x2A, 0]) + lba.to_bytes(4, "big") + bytes([0]) + (len(data) // BLOCK).to_bytes(2, "big") + b"\0"
    return command.RawCommand(cdb=cdb, direction=Direction.TO_DEVICE, data=data)


# -- defect 1: CDB lengths --------------------------------------------------------


def test_sg_channels_state_the_cdb_lengths_the_kernel_carries(sg_device):
    with open_ready(sg_device) as ch:
        assert ch.cdb_lengths == (6, 32)


def test_a_cdb_longer_than_a_slot_fails_at_once_and_the_slot_never_replays_its_last_write(sg_device):
    lba = 300
    old, new = stamp(lba, 0xA1), stamp(lba, 0xB2)
    with open_ready(sg_device, max_fds=1) as ch:
        ch.execute(command.Write10(lba=lba, transfer_length=1, data=old), async_=True).wait(10)
        with open_ready(sg_device) as other:
            other.cmd.Write10(lba=lba, transfer_length=1, data=new)
        long_cdb = command.RawCommand(cdb=bytes([0x00]) + bytes(39))  # TEST UNIT READY, padded to 40 bytes
        try:
            with pytest.raises(errors.CdbLengthError, match=r"40 bytes.*6 to 32"):
                ch.execute(long_cdb, async_=True)
            assert ch.reactor.statistics()["outstanding"] == 0
        finally:
            ch.close(timeout=2)
    # Today's code wrote the slot's previous header again: the old WRITE ran a second time.
    assert medium(sg_device, lba) == new


@pytest.mark.parametrize("size", [1, 4, 5, 33, 40, 260])
def test_every_path_refuses_a_cdb_outside_the_transport_lengths_before_sending(sg_device, size):
    cdb = bytes([0x00]) + bytes(size - 1)
    raw = command.RawCommand(cdb=cdb)
    with open_ready(sg_device) as ch:
        before = ch.reactor.statistics()["submitted"]
        with pytest.raises(errors.CdbLengthError, match=rf"{size} bytes"):
            ch.execute(raw)
        with pytest.raises(errors.CdbLengthError):
            ch.execute(raw, async_=True)
        with pytest.raises(errors.CdbLengthError):
            ch.execute_many([command.TestUnitReady(), raw], async_=True)
        with pytest.raises(errors.CdbLengthError):
            ch.run(raw, count=4, queue_depth=2)
        with pytest.raises(errors.CdbLengthError):
            ch.run(raw, count=4)
        assert ch.reactor.statistics()["submitted"] == before
        assert ch.reactor.statistics()["outstanding"] == 0
        ch.cmd.TestUnitReady()  # the channel works on


def test_asyncio_refuses_a_cdb_outside_the_transport_lengths(sg_device):
    async def main():
        async with aio.open(sg_device) as ch:
            with pytest.raises(errors.CdbLengthError):
                await ch.execute(command.RawCommand(cdb=bytes(40)))
            with pytest.raises(errors.CdbLengthError):
                await ch.execute_many([command.RawCommand(cdb=bytes(3))])
            await ch.cmd.TestUnitReady()

    asyncio.run(main())


# -- defect 4: data buffers -------------------------------------------------------------


@pytest.mark.parametrize("async_", [False, True])
def test_a_data_buffer_shrunk_after_the_command_was_built_is_refused(sg_device, async_):
    lba = 400
    before = stamp(lba, 0xC3, 8)
    with open_ready(sg_device) as ch:
        ch.cmd.Write10(lba=lba, transfer_length=8, data=before)
        data = bytearray(stamp(lba, 0xD4, 8))
        raw = write10_raw(lba, data)
        del data[BLOCK:]  # 512 bytes left; the command still says 4096
        with pytest.raises(errors.EncodeError, match="512 bytes.*4096"):
            ch.execute(raw, async_=async_)
        assert ch.reactor.statistics()["outstanding"] == 0
    # Today's code handed the kernel 4096 bytes from a 512-byte buffer: heap bytes on the disk.
    assert medium(sg_device, lba, 8) == before


@pytest.mark.parametrize("async_", [False, True])
def test_a_command_sent_again_after_its_data_shrank_is_refused(sg_device, async_):
    lba = 500
    with open_ready(sg_device) as ch:
        data = bytearray(stamp(lba, 0xE5, 8))
        write = command.Write10(lba=lba, transfer_length=8, data=data)
        ch.execute(write)  # sent once: its transfer length is remembered
        del data[BLOCK:]
        data[:] = stamp(lba, 0xF6)
        with pytest.raises(errors.EncodeError):
            ch.execute(write, async_=async_)
        assert ch.reactor.statistics()["outstanding"] == 0
    assert medium(sg_device, lba, 8) == stamp(lba, 0xE5, 8)


def test_a_data_buffer_cannot_change_size_in_flight_and_can_once_it_came_back(sg_device):
    lba = 600
    with open_ready(sg_device) as ch:
        data = bytearray(stamp(lba, 0x17, 8))
        io = ch.execute(command.Write10(lba=lba, transfer_length=8, data=data), async_=True)
        if not io.returned:  # always, unless another thread drove the reactor meanwhile
            with pytest.raises(BufferError):
                data.extend(b"x")
        io.wait(10)
        data.extend(b"x")  # the kernel gave it back: the export is released
        del data[-1:]
        assert io.ok and bytes(io.data_buf) == stamp(lba, 0x17, 8)
        sync = ch.execute(command.Write10(lba=lba, transfer_length=8, data=data))
        data.append(0)  # a synchronous command lets go when SG_IO returns
        assert sync.ok
    assert medium(sg_device, lba, 8) == stamp(lba, 0x17, 8)


# -- defect 5: timeouts -------------------------------------------------------------------

BAD_TIMEOUTS = [-1, 0, 2 ** 32, 10 ** 12, math.nan, math.inf, 1.5, "1000", True, b"1"]


def test_a_hundred_bad_timeouts_leave_the_channel_usable(sg_device):
    with open_ready(sg_device) as ch:
        for i in range(100):
            bad = BAD_TIMEOUTS[i % len(BAD_TIMEOUTS)]
            with pytest.raises((ValueError, TypeError), match="timeout"):
                ch.execute(command.TestUnitReady(), timeout=bad, async_=True)
            with pytest.raises((ValueError, TypeError), match="timeout"):
                ch.execute_many([command.TestUnitReady()] * 3, timeout=bad, async_=True)
            with pytest.raises((ValueError, TypeError), match="timeout"):
                ch.execute(command.TestUnitReady(), timeout=bad)
        stats = ch.reactor.statistics()
        assert stats["outstanding"] == 0 and stats["in_flight"] == 0
        ios = [ch.execute(command.TestUnitReady(), async_=True) for _ in range(40)]
        ch.wait(10)
        assert all(io.ok for io in ios)


@pytest.mark.parametrize("bad", [-1, 2 ** 32, math.nan, 2.5])
def test_bad_timeouts_are_refused_when_opening_setting_and_running(sg_device, bad):
    with pytest.raises((ValueError, TypeError), match="timeout"):
        Channel.from_path(sg_device, timeout=bad)
    with open_ready(sg_device) as ch:
        with pytest.raises((ValueError, TypeError), match="timeout"):
            ch.timeout = bad
        with pytest.raises((ValueError, TypeError), match="timeout"):
            ch.run(command.TestUnitReady(), count=2, timeout=bad)
        assert ch.timeout == 60000
        ch.cmd.TestUnitReady(timeout=2 ** 32 - 1)


# -- defect 10: the transfer-length cache keeps no payload -----------------------------------


def test_streaming_fresh_writes_retains_no_payload(sg_device):
    size = 64 * 1024
    count = 400  # 25 MiB of payloads
    with open_ready(sg_device) as ch:
        ch.block_size  # learned before measuring
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for i in range(count):
                ios = ch.execute_many([command.Write10(lba=(i % 64) * 128, transfer_length=size // BLOCK,
                                                       data=bytes([i & 0xFF]) * size)], async_=True)
                ch.wait(10)
                del ios
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - base
            assert kept < 2 * 1024 * 1024, f"{kept} bytes kept after {count} writes of {size}"
            ch.close()
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - base
            assert kept < 2 * 1024 * 1024
        finally:
            tracemalloc.stop()


def test_equal_commands_share_a_cache_entry_and_a_changed_data_size_misses(sg_device):
    with open_ready(sg_device) as ch:
        for _ in range(3):
            ch.cmd.Write10(lba=700, transfer_length=1, data=stamp(700, 1))
        assert len(ch._xfer_cache) == 1
        assert all(isinstance(v, int) for v in ch._xfer_cache.values())
        with pytest.raises(errors.EncodeError):
            ch.cmd.Write10(lba=700, transfer_length=1, data=stamp(700, 1, 2))


# -- defect 16: named errors on bad input ------------------------------------------------------


def test_a_job_runs_a_raw_command(sg_device):
    with open_ready(sg_device) as ch:
        job = ch.run(command.RawCommand(cdb=bytes(6)), count=5, queue_depth=2)
        assert job.stats.commands == 5
        with pytest.raises(errors.SgError, match="no LOGICAL BLOCK ADDRESS"):
            ch.run(command.RawCommand(cdb=bytes(6)), count=5, lba="random")


@pytest.mark.parametrize("options, exc", [
    (dict(seconds=math.inf), ValueError),
    (dict(seconds=math.nan), ValueError),
    (dict(seconds="5"), TypeError),
    (dict(count=2.5), TypeError),
    (dict(count=2, queue_depth=1.5), TypeError),
    (dict(count=2, max_fds=1.5), TypeError),
    (dict(count=2, max_errors=-1), ValueError),
    (dict(count=2, timeout=-1), ValueError),
])
def test_job_arguments_are_checked_with_named_errors(sg_device, options, exc):
    with open_ready(sg_device) as ch:
        with pytest.raises(exc):
            ch.run(command.TestUnitReady(), **options)
        assert not ch.transport.jobs and ch.reactor.statistics()["outstanding"] == 0


def test_channel_options_are_checked_when_opening(sg_device):
    with pytest.raises(TypeError, match="sgpy.safety.READ_ONLY"):
        Channel.from_path(sg_device, policy="readonly")
    with pytest.raises(TypeError, match="max_fds"):
        Channel.from_path(sg_device, max_fds=1.5)
    with pytest.raises(ValueError, match="max_fds"):
        Channel.from_path(sg_device, max_fds=0)
    with pytest.raises(TypeError, match="block_size"):
        Channel.from_path(sg_device, block_size="512")
    with open_ready(sg_device, policy=safety.READ_ONLY) as ch:
        with pytest.raises(errors.UnsafeCommand):
            ch.cmd.Write10(lba=0, transfer_length=1, data=bytes(BLOCK))


@pytest.mark.parametrize("bad", [None, b"\x00" * 6, "TestUnitReady", command.TestUnitReady])
def test_executing_something_that_is_not_a_command_is_a_type_error(sg_device, bad):
    with open_ready(sg_device) as ch:
        with pytest.raises(TypeError, match="command"):
            ch.execute(bad)
        with pytest.raises(TypeError, match="command"):
            ch.execute(bad, async_=True)
        with pytest.raises(TypeError, match="command"):
            ch.execute_many([command.TestUnitReady(), bad])
        with pytest.raises(TypeError, match="command"):
            ch.run(bad, count=1)
        assert ch.reactor.statistics()["outstanding"] == 0

    async def main():
        async with aio.open(sg_device) as ach:
            with pytest.raises(TypeError, match="command"):
                await ach.execute(bad)

    asyncio.run(main())


def test_a_transfer_the_kernel_cannot_allocate_is_a_named_error(sg_device, monkeypatch):
    # A real 256 MiB - 1 read makes the kernel fail with ENOMEM (sg_build_indirect), but it also
    # starves the sandbox's guest; the kernel's answer is played here instead, on both paths.
    import errno

    from sgpy import _binding

    read = command.Read10(lba=0, transfer_length=64)
    with open_ready(sg_device) as ch:
        def no_memory(self, *args):
            raise OSError(errno.ENOMEM, "SG_IO: Cannot allocate memory")

        monkeypatch.setattr(_binding.SyncCaller, "call", no_memory)
        with pytest.raises(errors.KernelMemoryError, match="ENOMEM.*split the transfer"):
            ch.execute(read)
        monkeypatch.undo()
        from sgpy import transport as _transport

        class Lib:  # the write() of one command, then of a batch, fails with ENOMEM
            sgpy_fill = _binding.lib.sgpy_fill

            @staticmethod
            def sgpy_fill_submit(*args):
                return errno.ENOMEM

        monkeypatch.setattr(_transport, "_lib", Lib)
        monkeypatch.setattr(_binding, "submit", lambda fd, ptrs, n: (0, errno.ENOMEM))
        io = ch.execute(read, async_=True)
        monkeypatch.undo()
        ch.wait(10)
        assert isinstance(io.exception, errors.KernelMemoryError)
        assert ch.reactor.statistics()["outstanding"] == 0
        ch.cmd.TestUnitReady()
