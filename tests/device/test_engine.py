"""The engine on real sg devices: queues, fd pools, reactor, limits.

What holds on any transport (the seed README's examples, execute_many,
handlers, must_fail, validators, read_only, data integrity) is tested once,
on sg and on iSCSI alike, in ``tests/iscsi/test_transports.py``.
"""

import collections
import glob
import os
import random
import signal
import struct
import threading
import time

import pytest

import sgpy
from sgpy import Channel, Reactor, command, handler
from sgpy.constants import SenseKey
from sgpy.errors import (
    ChannelClosed,
    IllegalRequest,
    NotAnSgDevice,
    SgError,
    TaskFailed,
    TransferTooLarge,
    UnsafeCommand,
    VerifyFailed,
)

BLOCK = 512


def pattern(lba, size=BLOCK):
    return struct.pack(">Q", lba) * (size // 8)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


def open_ready(path, **kw):
    ch = Channel.from_path(path, **kw)
    ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
    return ch


def write_pattern(ch, blocks, chunk=64):
    cmds = [command.Write10(lba=lba, transfer_length=chunk,
                            data=b"".join(pattern(i) for i in range(lba, lba + chunk)))
            for lba in range(0, blocks, chunk)]
    ch.execute_many(cmds)


def test_100k_reads_over_8_channels_on_2_devices_one_reactor(sg_devices, reactor):
    assert len(sg_devices) >= 2
    blocks = 4096
    for path in sg_devices[:2]:
        with open_ready(path, reactor=reactor) as ch:
            write_pattern(ch, blocks)
    channels = [open_ready(sg_devices[i % 2], reactor=reactor) for i in range(8)]
    seen = {}
    lock = threading.Lock()

    def count(io):
        with lock:
            seen[id(io)] = seen.get(id(io), 0) + 1

    rng = random.Random(7)
    total = 100_000
    per = total // len(channels)
    all_ios = []
    try:
        for ch in channels:
            cmds = []
            for _ in range(per):
                c = command.Read10(lba=rng.randrange(blocks), transfer_length=1)
                c.add_handler(count)
                cmds.append(c)
            all_ios.extend(ch.execute_many(cmds, async_=True))
        assert reactor.wait(timeout=600)
        stats = reactor.statistics()
        assert len(all_ios) == total
        assert all(io.returned for io in all_ios)
        bad = [io for io in all_ios if io.data != pattern(io.command.lba)]
        assert not bad, f"{len(bad)} reads returned another block's data"
        assert len(seen) == total and set(seen.values()) == {1}, "a completion was lost or delivered twice"
        assert stats["outstanding"] == 0 and stats["in_flight"] == 0 and stats["queued"] == 0
        assert stats["failed"] == 0
    finally:
        for ch in channels:
            ch.close()


@pytest.mark.scsi_debug(delay=0, ndelay=200000)
def test_queue_depth_64_on_one_channel_never_shows_edom(sg_device):
    with open_ready(sg_device, max_fds=2) as ch:  # 2 fds x 16 = 32 kernel slots for 64 commands
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(64)], async_=True)
        stats = ch.reactor.statistics()["channels"][sg_device]
        assert stats["in_flight"] == 32 and stats["queued"] == 32
        ch.wait(timeout=60)
        assert all(io.ok for io in ios)
    with open_ready(sg_device) as ch:  # default pool: up to 16 fds, 4 each
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(64)], async_=True)
        stats = ch.reactor.statistics()["channels"][sg_device]
        assert stats["in_flight"] == 64 and stats["fds"] == 16
        ch.wait(timeout=60)
        assert all(io.ok for io in ios)


def test_no_fd_leak_over_1000_channels(sg_device):
    sgpy.default_reactor()  # created on first use, and kept: its epoll fd and wake-up pipe
    before = fd_count()
    for _ in range(1000):
        ch = Channel.from_path(sg_device)
        ch.close()
        ch.close()  # idempotent
    assert fd_count() == before
    # and with a pool of several fds in use
    for _ in range(20):
        with Channel.from_path(sg_device) as ch:
            ch.execute_many([command.Inquiry() for _ in range(40)], async_=True)
            ch.wait()
    assert fd_count() == before


def test_transfer_larger_than_the_device_allows_is_refused_with_the_limit(sg_device):
    with open_ready(sg_device) as ch:
        limit = ch.max_transfer
        blocks = limit // BLOCK + 1
        with pytest.raises(TransferTooLarge, match=f"at most {limit} bytes"):
            ch.cmd.Read16(lba=0, transfer_length=blocks)


def test_assured_transfer_is_the_queues_segments_in_pages_and_always_fits(sg_device):
    # max_segments pages always map into one request (each page is at least one segment); the
    # sandbox's scsi_debug takes 2048 one-page segments, so 8 MiB passes and 8 MiB + 4 KiB is
    # refused by the kernel, although max_hw_sectors_kb states no limit.
    with open_ready(sg_device) as ch:
        name = os.path.basename(os.path.realpath(sg_device))
        queue = glob.glob(f"/sys/class/scsi_generic/{name}/device/block/*/queue")[0]
        with open(f"{queue}/max_segments") as f:
            segments = int(f.read())
        page = os.sysconf("SC_PAGE_SIZE")
        assert ch.assured_transfer == min(segments * page, ch.max_transfer)
        assert ch.assured_transfer <= ch.max_transfer
        blocks = ch.assured_transfer // BLOCK
        io = ch.execute(command.Read16(lba=0, transfer_length=blocks))
        assert io.ok and len(io.data) == ch.assured_transfer
        io = ch.execute(command.Read16(lba=0, transfer_length=blocks), async_=True)
        io.wait()
        assert len(io.data) == ch.assured_transfer
        # One page more: scsi_debug's segments hold one page each (measured: the kernel maps
        # 2048 pages and refuses 2049), so the kernel refuses it, and says what fits.
        with pytest.raises(TaskFailed, match=f"split it into smaller commands of at most "
                                             f"{ch.assured_transfer} bytes"):
            ch.execute(command.Read16(lba=0, transfer_length=(ch.assured_transfer + page) // BLOCK))
        assert ch.execute(command.TestUnitReady()).ok


def test_closed_channel_refuses_work(sg_device):
    ch = open_ready(sg_device)
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.cmd.TestUnitReady()


@pytest.mark.scsi_debug(ndelay=100_000_000)  # 100 ms per command
def test_close_drains_commands_in_flight(sg_device):
    ch = open_ready(sg_device)
    ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(8)], async_=True)
    ch.close()
    assert all(io.returned and io.ok for io in ios)


def test_block_device_is_synchronous_only(sg_device):
    import glob

    disks = sorted(glob.glob(f"/sys/class/scsi_generic/{os.path.basename(sg_device)}/device/block/*"))
    blk = "/dev/" + os.path.basename(disks[0])
    with Channel.from_path(blk) as ch:
        assert ch.kind == "block"
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        assert ch.cmd.Inquiry().result.product == "scsi_debug"
        with pytest.raises(SgError, match="synchronous SG_IO commands only"):
            ch.cmd.Inquiry(async_=True)


def test_bsg_node_is_synchronous_only(sg_device):
    name = os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{os.path.basename(sg_device)}/device"))
    node = f"/dev/bsg/{name}"
    assert os.path.exists(node), f"no bsg node {node}"
    with Channel.from_path(node) as ch:
        assert ch.kind == "bsg" and ch.sync_only
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        assert ch.cmd.Inquiry().result.product == "scsi_debug"
        ch.cmd.Write10(lba=3, transfer_length=1, data=pattern(3))
        io = ch.cmd.Read10(lba=3, transfer_length=1)
        assert io.data == pattern(3) and io.hdr.resid == 0
        with pytest.raises(IllegalRequest, match="out of range"):
            ch.cmd.Read16(lba=0xFFFFFFFF, transfer_length=1)
        with pytest.raises(SgError, match="bsg device: it takes synchronous SG_IO commands only"):
            ch.cmd.Inquiry(async_=True)


def test_not_an_sg_device_is_named(tmp_path):
    with pytest.raises(NotAnSgDevice, match="/dev/null is a character device but not an sg or bsg device"):
        Channel.from_path("/dev/null")
    f = tmp_path / "plain"
    f.write_bytes(b"x")
    with pytest.raises(NotAnSgDevice, match="not a device node"):
        Channel.from_path(str(f))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Channel.from_path("/dev/sg999")


def test_background_thread_with_submitters_on_many_threads(sg_devices):
    r = Reactor()
    r.start()
    try:
        channels = [open_ready(p, reactor=r) for p in sg_devices[:2]]
        results = []
        errors = []

        def worker(k):
            try:
                ch = channels[k % len(channels)]
                ios = ch.execute_many([command.Read10(lba=k * 10 + i, transfer_length=1) for i in range(200)],
                                      async_=True)
                for io in ios:
                    io.wait(timeout=60)
                sync = ch.cmd.Inquiry()  # synchronous from a non-reactor thread
                results.append(len(ios) + (1 if sync.ok else 0))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert results == [201] * 6
        assert r.statistics()["outstanding"] == 0
        for ch in channels:
            ch.close()
    finally:
        r.stop()
        r.close()


@pytest.mark.scsi_debug(ndelay=50_000_000)  # 50 ms per command
def test_keyboard_interrupt_during_wait_loses_no_command(sg_device):
    with open_ready(sg_device) as ch:
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(32)], async_=True)

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.03)
            with pytest.raises(KeyboardInterrupt):
                ch.wait()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        ch.wait(timeout=30)
        assert all(io.returned and io.ok for io in ios)
        assert ch.reactor.statistics()["outstanding"] == 0


@pytest.mark.scsi_debug(sector_size=4096)
def test_block_size_is_learned_from_read_capacity(sg_device):
    with open_ready(sg_device) as ch:
        io = ch.cmd.Read10(lba=0, transfer_length=2)
        assert ch.block_size == 4096
        assert len(io.data) == 8192
    with open_ready(sg_device, block_size=4096) as ch:
        assert ch.cmd.Write6(lba=1, data=b"z" * 4096).ok
        assert ch.cmd.Read6(lba=1, transfer_length=1).data == b"z" * 4096


def test_variable_length_answers_are_reissued_once(sg_device):
    with open_ready(sg_device) as ch:
        io = ch.cmd.Inquiry(evpd=True, page_code=0x83, allocation_length=8)
        assert io.command.allocation_length > 8
        assert not io.result.truncated and len(io.result.designators) >= 2
        full = io.result
    with open_ready(sg_device, reissue=False) as ch:
        io = ch.cmd.Inquiry(evpd=True, page_code=0x83, allocation_length=8)
        assert io.command.allocation_length == 8
        assert io.result.truncated and io.result.wanted_length == full.wanted_length


def test_results_are_typed(sg_device):
    with open_ready(sg_device) as ch:
        inq = ch.cmd.Inquiry().result
        assert (inq.vendor, inq.product) == ("Linux", "scsi_debug")
        cap = ch.cmd.ReadCapacity16().result
        assert cap.block_length == BLOCK and cap.returned_lba == 64 * 2048 - 1
        assert ch.cmd.ReadCapacity10().result.block_length == BLOCK
        luns = ch.cmd.ReportLuns().result
        assert [lun.linux for lun in luns.luns] == [0]
        assert ch.cmd.TestUnitReady().result is None


def test_reactor_fileno_is_readable_when_completions_wait(sg_device):
    import select

    r = Reactor()
    try:
        with open_ready(sg_device, reactor=r) as ch:
            io = ch.execute(command.Inquiry(), async_=True)
            readable, _, _ = select.select([r.fileno()], [], [], 5)
            assert readable == [r.fileno()]
            assert r.poll() >= 0
            io.wait(timeout=5)
            assert io.ok
    finally:
        r.close()


def test_statistics_count_per_channel(sg_devices, reactor):
    a = open_ready(sg_devices[0], reactor=reactor)
    b = open_ready(sg_devices[1], reactor=reactor)
    try:
        a.execute_many([command.TestUnitReady() for _ in range(10)])
        b.execute(command.Read16(lba=0xFFFFFFFF, transfer_length=1), verify_handler=handler.might_fail)
        s = reactor.statistics()
        assert set(s) >= {"submitted", "completed", "failed", "in_flight", "queued", "channels"}
        assert s["channels"][sg_devices[0]]["submitted"] == 11
        # TEST UNIT READY, READ CAPACITY(16) (to learn the block size), READ(16)
        assert s["channels"][sg_devices[1]]["submitted"] == 3
        assert s["failed"] == 1 and s["completed"] == 13
    finally:
        a.close()
        b.close()


@pytest.mark.scsi_debug(ndelay=500_000_000)  # 0.5 s per command
def test_watchdog_finishes_a_lost_command_once_and_keeps_its_buffers(sg_device):
    r = Reactor()
    try:
        with open_ready(sg_device, reactor=r) as ch:
            calls = []
            cmd = command.Read10(lba=0, transfer_length=1)
            cmd.add_handler(calls.append)
            io = ch.execute(cmd, async_=True, verify_handler=handler.might_fail)
            buf = io.data_buf
            with r.lock:
                io._submitted_at -= 3600  # as if the kernel had held it for an hour
                r._sweep(time.monotonic())
            assert io.returned and isinstance(io.error, sgpy.CommandTimeout)
            assert "reactor watchdog" in str(io.error)
            assert r.statistics()["abandoned"] == 1
            # The kernel hands it back later: silently retired, never delivered twice.
            deadline = time.monotonic() + 10
            while r.statistics()["abandoned"] and time.monotonic() < deadline:
                r.wait(timeout=0.1)
                r.poll()
            assert r.statistics()["abandoned"] == 0
            assert calls == [io] and io.data_buf is buf
            assert ch.cmd.TestUnitReady().ok
    finally:
        r.close()


def test_channel_from_fd_leaves_the_fd_to_its_owner(sg_device):
    fd = os.open(sg_device, os.O_RDWR | os.O_NONBLOCK)
    try:
        ch = Channel.from_fd(fd)
        assert repr(ch) == f"Channel({sg_device!r})"
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        ios = ch.execute_many([command.Inquiry() for _ in range(40)], async_=True)  # uses more pool fds
        ch.wait()
        assert all(io.ok for io in ios)
        ch.close()
        os.fstat(fd)  # still open
    finally:
        os.close(fd)


@pytest.mark.scsi_debug(ndelay=100_000_000)  # 100 ms per command
def test_a_full_kernel_queue_waits_for_epollout_instead_of_failing(sg_device):
    from sgpy import _binding as b

    fd = os.open(sg_device, os.O_RDWR | os.O_NONBLOCK)
    r = Reactor()
    try:
        # Someone else fills this fd's 16 kernel slots...
        slots = b.new_slots(16)
        ptrs = b.slot_pointers(16)
        for i in range(16):
            b.fill(slots + i, b.SG_DXFER_NONE, bytes(6), b.NULL, 0, 5000, 900 + i)
            ptrs[i] = slots + i
        assert b.submit(fd, ptrs, 16) == (16, 0)
        # ...and a one-fd channel on the same fd gets EDOM from the kernel.
        ch = Channel.from_fd(fd, reactor=r, max_fds=1)
        io = ch.execute(command.Inquiry(), async_=True)
        assert not io.returned and r.statistics()["queued"] == 1
        io.wait(timeout=30)
        assert io.ok and io.result.product == "scsi_debug"
        ch.close()
    finally:
        r.close()
        os.close(fd)


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.parametrize("async_", [False, True])
def test_a_dropped_batch_of_reads_gives_its_memory_back_and_no_two_reads_share_a_buffer(sg_device, async_):
    # 20,000 4 KiB reads (80 MB of data): each must hold its own block, and
    # once the IOs are dropped the process is back near where it started
    # (data-in buffers come from mappings that go with their last buffer).
    import gc

    blocks = 2048
    with open_ready(sg_device) as ch:
        write_pattern(ch, blocks)
        cmds = [command.Read10(lba=lba, transfer_length=8) for lba in range(0, blocks, 8)]
        ch.execute_many(cmds[:32])
        gc.collect()
        start = _rss_kib()
        n = 20_000
        batch = [cmds[i % len(cmds)] for i in range(n)]
        ios = ch.execute_many(batch, async_=async_)
        if async_:
            assert ch.reactor.wait(ios, timeout=600)
        peak = _rss_kib()
        assert peak - start > n * 4 * 0.9  # the data was really there
        bad = [io for io in ios if io.data != b"".join(pattern(i) for i in range(io.command.lba, io.command.lba + 8))]
        assert not bad, f"{len(bad)} reads hold another read's data"
        kept = ios[12345]
        kept_data = kept.data
        del ios, bad, batch
        gc.collect()
        after = _rss_kib()
        assert after - start < 0.1 * start + 4096, (start, peak, after)  # one kept IO keeps at most 1 MiB
        assert kept.data == kept_data


def test_each_finished_command_is_one_debug_record_on_sgpy_command(sg_device, caplog):
    import logging

    with open_ready(sg_device) as ch:
        assert ch.block_size == BLOCK  # learned (READ CAPACITY) before the records are counted
        with caplog.at_level(logging.DEBUG, logger="sgpy.command"):
            ch.execute(command.TestUnitReady())  # synchronous, clean
            ios = ch.execute_many([command.Read10(lba=lba, transfer_length=1) for lba in range(3)], async_=True)
            assert ch.reactor.wait(ios, timeout=60)
            beyond = command.Read16(lba=2 ** 40, transfer_length=1)
            with pytest.raises(IllegalRequest):
                ch.execute(beyond)
            ch.execute(beyond, verify_handler=handler.must_fail)  # expected to fail: no exception
        records = [r for r in caplog.records if r.name == "sgpy.command"]
        ios_logged = [r.sgpy_io for r in records]
        assert len(records) == 6 and len({id(io) for io in ios_logged}) == 6  # one record per IO, each once
        assert all(r.levelno == logging.DEBUG for r in records)
        tur, *reads, bad, expected = (r.getMessage() for r in records)
        assert tur == f"{ch.path}: TestUnitReady [00 00 00 00 00 00] -> GOOD, 0 of 0 bytes, " \
                      f"{ios_logged[0].hdr.duration} ms"
        assert all(m.startswith(f"{ch.path}: Read10 [28 00 00 00 00 0") and " -> GOOD, 512 of 512 bytes" in m
                   for m in reads)
        assert bad == expected == (
            f"{ch.path}: Read16 [88 00 00 00 01 00 00 00 00 00 00 00 00 01 00 00] -> CHECK CONDITION, sense: "
            f"{ios_logged[4].sense}, resid {ios_logged[4].hdr.resid}, {ios_logged[4].hdr.duration} ms")
        assert "ILLEGAL REQUEST" in bad and "21h/00h" in bad
        caplog.clear()
        ch.execute(command.TestUnitReady())  # the logger at its default level: nothing
        assert not [r for r in caplog.records if r.name == "sgpy.command"]


@pytest.mark.parametrize("async_", [True, False], ids=["async", "sync batch in C"])
def test_a_finished_read_of_a_batch_holds_at_most_300_bytes_besides_its_data(sg_device, async_):
    # A finished read of a batch holds its IO, its place in the list, and the mapping its buffer was
    # carved from with its offset there: no C pointer (40 bytes, only needed while the kernel may
    # write) and no view of its own (184 bytes) until data_buf is asked for.  Was 446-490 bytes.
    import gc
    import tracemalloc

    with open_ready(sg_device, block_size=512) as ch:
        # Prebuilt commands, each sent ten times: the channel's checks of a command are kept per
        # command (up to 1,024 of them), not per IO, and are paid for by the warm-up.
        ring = [command.Read10(lba=i * 8, transfer_length=8) for i in range(500)]
        cmds = ring * 10
        assert ch.reactor.wait(ch.execute_many(ring, async_=True), timeout=60)
        ch.execute_many(ring)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            ios = ch.execute_many(cmds, async_=async_)
            assert ch.reactor.wait(ios, timeout=600)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert all(io.ok and len(io.data) == 4096 for io in ios)
        assert held / len(ios) <= 300, f"{held / len(ios):.0f} bytes per read"
        # The view, made when asked, is the IO's bytes and stays the same object.
        for io in ios[:3] + ios[-3:]:
            view = io.data_buf
            assert type(view) is memoryview and view.nbytes == 4096 and not view.readonly
            assert bytes(view) == io.data and io.data_buf is view
        io = ch.execute(cmds[0])
        assert io.data_buf.obj is not None and bytes(io.data_buf) == io.data


def test_an_io_of_a_batch_holds_at_most_300_bytes_of_python_heap_besides_its_data(sg_device):
    # Measured with tracemalloc over 10,000 TEST UNIT READYs (no data): the IO object, its header
    # and its place in the returned list.  Clean completions share one header per duration, so the
    # header is not paid for per IO; a failed command keeps a header of its own, with its sense.
    import gc
    import tracemalloc

    from sgpy.handler import might_fail

    with open_ready(sg_device) as ch:
        tur = command.TestUnitReady()
        warm = ch.execute_many([tur] * 64, async_=True)
        assert ch.reactor.wait(warm, timeout=60)
        del warm
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            ios = ch.execute_many([tur] * 10_000, async_=True)
            assert ch.reactor.wait(ios, timeout=600)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert all(io.ok and io.hdr.status == 0 and io.hdr.sense == b"" and io.hdr.resid == 0 for io in ios)
        assert held / len(ios) <= 300, f"{held / len(ios):.0f} bytes per IO"
        beyond = command.Read16(lba=2 ** 40, transfer_length=1)
        bad = ch.execute_many([beyond, beyond], async_=True)
        assert ch.reactor.wait(bad, timeout=60)
        for io in bad:
            might_fail(io)
        assert bad[0].hdr is not bad[1].hdr and bad[0].hdr.sense and bad[0].hdr.status == 2


def test_done_callbacks_added_from_another_thread_than_the_reactors_run_once_after_the_handlers(sg_device):
    # add_done_callback takes no lock: the reactor's thread counts an IO settled before it reads the
    # callbacks, and the adder's test-and-store has no thread switch point.  Added while the IO is in
    # flight, while its verify handler runs (returned, not settled yet: the handler sleeps, so the
    # adder runs then), or after: each callback runs exactly once, after the verify handler (it sees
    # its outcome), on the reactor's thread or the adder's.
    from sgpy import Reactor

    seen = collections.defaultdict(list)
    bad = []

    def verify(io):
        time.sleep(0.002)  # the window between "returned" and "settled", widened
        if io.command.lba % 3 == 1:
            raise ValueError("rejected by the verify handler")

    def callback(io):
        if not io._settled or (io.command.lba % 3 == 1) != isinstance(io.exception, ValueError):
            bad.append(io)
        seen[id(io)].append(threading.get_ident())

    reactor = Reactor()
    reactor.start()
    try:
        with open_ready(sg_device, reactor=reactor, block_size=512) as ch:
            all_ios = []
            for k in range(6):
                cmds = [command.Read10(lba=i, transfer_length=1, verify_handler=verify) for i in range(16)]
                ios = ch.execute_many(cmds, async_=True)
                for i, io in enumerate(ios):
                    if (i + k) % 3 == 1:
                        while not io.returned:  # then add it at once: while its verify handler sleeps
                            time.sleep(0)
                    elif (i + k) % 3 == 2:
                        while not io._settled:  # then it runs here, at once
                            time.sleep(0)
                    io.add_done_callback(callback)
                all_ios.extend(ios)
            assert reactor.wait(all_ios, timeout=60)
            deadline = time.monotonic() + 10
            while sum(len(v) for v in seen.values()) < len(all_ios) and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        reactor.close()
    assert not bad, f"{len(bad)} callbacks ran before their IO settled"
    assert sorted(len(seen[id(io)]) for io in all_ios) == [1] * len(all_ios)
    threads = {t for v in seen.values() for t in v}
    assert threading.get_ident() in threads and len(threads) == 2  # both ways were taken
