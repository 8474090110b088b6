"""Jobs (sgpy.job, Channel.run) on real sg devices served by scsi_debug.

What is checked: every command a job reports was sent exactly once with the
LBA it says (write jobs leave their pattern exactly where the LBA plan puts
it, nowhere else); counts and deadlines end the job; failures injected by
scsi_debug (medium errors, RECOVERED ERROR, timeouts) come back as the same
exceptions :meth:`Channel.execute` raises, naming the failing LBA; jobs share
a reactor with each other and with IOs; closing, Ctrl-C and bad arguments
lose nothing and leak no fd.

scsi_debug facts (Linux 6.1 drivers/scsi/scsi_debug.c): ``opts`` bit 2
makes reads of ``medium_error_start`` .. ``+ medium_error_count - 1`` fail
with MEDIUM ERROR 11h/00h; bit 8 answers RECOVERED ERROR when ``every_nth``
fires; bit 4 drops the command.  All devices of the module share one store.
"""

import os
import signal
import struct
import threading
import time

import pytest

from sgpy import Channel, Reactor, command, handler
from sgpy.errors import (
    ChannelClosed,
    CommandTimeout,
    DataMismatch,
    EncodeError,
    IllegalRequest,
    MediumError,
    UnitAttention,
    UnsafeCommand,
)
from sgpy.job import Job, JobError, JobStats

BLOCK = 512
BLOCKS = 64 * 1024 * 1024 // BLOCK  # the sandbox's dev_size_mb=64


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def settle(ch):
    for _ in range(10):
        io = ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        if io.error is None:
            return ch
        if not isinstance(io.error, UnitAttention):
            raise io.error
    raise AssertionError(f"{ch!r} keeps reporting unit attentions")


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


@pytest.fixture
def ch(sg_device, reactor):
    c = settle(Channel.from_path(sg_device, reactor=reactor))
    yield c
    c.close()


def stamp(tag, n_blocks):
    """A recognisable data-out buffer: ``tag`` repeated over ``n_blocks`` blocks."""
    return (tag * (BLOCK // len(tag))) * n_blocks


def zero(ch, first, count):
    ch.execute_many([command.Write16(lba=lba, transfer_length=min(256, first + count - lba),
                                     data=bytes(BLOCK * min(256, first + count - lba)))
                     for lba in range(first, first + count, 256)])


def read_blocks(ch, first, count):
    out = b""
    for lba in range(first, first + count, 256):
        n = min(256, first + count - lba)
        out += ch.cmd.Read16(lba=lba, transfer_length=n).data
    return [out[i:i + BLOCK] for i in range(0, len(out), BLOCK)]


# -- what a job sends -------------------------------------------------------------


@pytest.mark.parametrize("qd", [1, 4, 16, 64])
@pytest.mark.parametrize("async_", [False, True])
def test_a_counted_job_sends_exactly_count_commands(ch, qd, async_):
    job = ch.run(command.Read10(lba=0, transfer_length=8), count=1000, queue_depth=qd, lba="random",
                 async_=async_)
    stats = job.wait()
    assert job.returned
    assert isinstance(stats, JobStats)
    assert (stats.commands, stats.submitted, stats.errors) == (1000, 1000, 0)
    assert stats.bytes == 1000 * 8 * BLOCK
    assert stats.latency is not None and stats.latency.count == 1000
    assert 0 < stats.latency.min_ns <= stats.latency.percentile(50) <= stats.latency.max_ns
    assert stats.iops > 0 and stats.seconds > 0
    assert ch.reactor.statistics()["outstanding"] == 0


def test_sequential_write_job_covers_its_range_once_and_nothing_else(ch):
    zero(ch, 0, 1024)
    # 40 commands of 8 blocks over [64, 384): the 40 chunks of the range, in order
    job = ch.run(command.Write16(lba=0, transfer_length=8, data=stamp(b"seq!", 8)), count=40,
                 queue_depth=4, lba="sequential", lba_range=(64, 384))
    assert job.stats.commands == 40
    blocks = read_blocks(ch, 0, 1024)
    written = [i for i, b in enumerate(blocks) if b != bytes(BLOCK)]
    assert written == list(range(64, 384))
    assert all(blocks[i] == stamp(b"seq!", 1) for i in written)


def test_sequential_job_wraps_around_its_range(ch):
    zero(ch, 0, 256)
    # 3 chunks in the range, 7 commands: chunks 0, 1, 2, 0, 1, 2, 0 — never past the range's end
    job = ch.run(command.Write16(lba=0, transfer_length=16, data=stamp(b"wrap", 16)), count=7,
                 lba="sequential", lba_range=(32, 80))
    assert job.stats.commands == 7
    blocks = read_blocks(ch, 0, 256)
    assert [i for i, b in enumerate(blocks) if b != bytes(BLOCK)] == list(range(32, 80))


def test_random_job_stays_in_its_range_and_aligned(ch):
    zero(ch, 0, 2048)
    ch.run(command.Write16(lba=0, transfer_length=4, data=stamp(b"rnd.", 4)), count=300, queue_depth=16,
           lba="random", lba_range=(512, 1536), seed=7)
    blocks = read_blocks(ch, 0, 2048)
    written = [i for i, b in enumerate(blocks) if b != bytes(BLOCK)]
    assert written and min(written) >= 512 and max(written) < 1536
    # aligned to the 4-block command: whole chunks only
    chunks = {i // 4 for i in written}
    assert written == sorted(i for c in chunks for i in range(c * 4, c * 4 + 4))
    assert len(chunks) > 100  # 300 draws over 256 chunks reach most of them


def test_random_jobs_repeat_with_their_seed(ch):
    def footprint(seed):
        zero(ch, 0, 1024)
        ch.run(command.Write16(lba=0, transfer_length=1, data=stamp(b"s", 1)), count=50, lba="random",
               lba_range=(0, 1024), seed=seed)
        return [i for i, b in enumerate(read_blocks(ch, 0, 1024)) if b != bytes(BLOCK)]

    a, b, c = footprint(11), footprint(11), footprint(12)
    assert a == b
    assert a != c


def test_list_job_sends_its_lbas_and_counts_them_by_default(ch):
    zero(ch, 0, 512)
    lbas = [3, 99, 250, 17, 400]
    job = ch.run(command.Write10(lba=0, transfer_length=1, data=stamp(b"L", 1)), lba=lbas, queue_depth=2)
    assert job.stats.commands == len(lbas)
    blocks = read_blocks(ch, 0, 512)
    assert [i for i, b in enumerate(blocks) if b != bytes(BLOCK)] == sorted(lbas)


def test_read_job_reads_what_is_there(ch):
    # A read job discards data, but it must move it: bytes counted, no short transfers.
    job = ch.run(command.Read16(lba=0, transfer_length=32), count=200, queue_depth=8, lba="sequential")
    assert (job.stats.commands, job.stats.short_transfers, job.stats.bytes) == (200, 0, 200 * 32 * BLOCK)


def test_fixed_lba_job_and_test_unit_ready(ch):
    job = ch.run(command.TestUnitReady(), count=5000)
    assert job.stats.commands == 5000 and job.stats.bytes == 0
    job = ch.run(command.Inquiry(allocation_length=96), count=100, queue_depth=8)
    assert job.stats.commands == 100


@pytest.mark.parametrize("qd", [1, 16])
def test_a_timed_job_ends_at_its_deadline(ch, qd):
    t0 = time.monotonic()
    job = ch.run(command.Read10(lba=0, transfer_length=8), seconds=0.5, queue_depth=qd, lba="random")
    took = time.monotonic() - t0
    assert 0.5 <= took < 3.0
    assert 0.5 <= job.stats.seconds < 3.0
    assert job.stats.commands > 100


def test_count_and_seconds_whichever_first(ch):
    job = ch.run(command.TestUnitReady(), count=10, seconds=30)
    assert job.stats.commands == 10 and job.stats.seconds < 5


# -- failures -------------------------------------------------------------------------


#: Load-time parameters: reads of 5000..5003 fail once opts bit 2 is set (as in test_faults).
MEDIUM = {"medium_error_start": 5000, "medium_error_count": 4}


@pytest.mark.scsi_debug(**MEDIUM)
@pytest.mark.parametrize("qd", [1, 8])
def test_medium_error_stops_the_job_and_names_the_lba(ch, scsi_debug, qd):
    scsi_debug.set(opts=2)
    before = fd_count()
    with pytest.raises(MediumError) as info:
        ch.run(command.Read16(lba=0, transfer_length=1), lba=list(range(4980, 5020)), queue_depth=qd)
    exc = info.value
    assert exc.command.lba == 5000
    assert exc.asc == 0x11 and exc.sense.information == 5000
    assert "lba=5000" in str(exc)
    assert fd_count() == before
    # the channel goes on
    assert ch.cmd.Read16(lba=0, transfer_length=1).ok


@pytest.mark.scsi_debug(**MEDIUM)
def test_without_stop_on_error_failures_are_counted_and_the_job_goes_on(ch, scsi_debug):
    scsi_debug.set(opts=2)
    job = ch.run(command.Read16(lba=0, transfer_length=1), lba=list(range(4990, 5020)) * 3, queue_depth=4,
                 stop_on_error=False, max_errors=5)
    stats = job.stats
    assert (stats.commands, stats.errors) == (78, 12)
    assert len(job.errors) == 5  # max_errors
    assert {e.command.lba for e in job.errors} <= {5000, 5001, 5002, 5003}
    assert all(isinstance(e, MediumError) for e in job.errors)
    assert job.exception is None


def test_recovered_error_counts_as_success(ch, scsi_debug):
    scsi_debug.set(opts=8, every_nth=10)
    try:
        job = ch.run(command.Read10(lba=0, transfer_length=1), count=100, lba="sequential")
    finally:
        scsi_debug.set(every_nth=0, opts=0)
    assert job.stats.commands == 100 and job.stats.errors == 0
    assert job.stats.recovered >= 5


def test_a_dropped_command_times_out_in_a_job(ch, scsi_debug):
    scsi_debug.set(opts=4, every_nth=50)
    try:
        with pytest.raises(CommandTimeout):
            ch.run(command.Read10(lba=0, transfer_length=1), count=200, queue_depth=4, lba="sequential",
                   timeout=300)
    finally:
        scsi_debug.set(every_nth=0, opts=0)
    assert ch.cmd.TestUnitReady().ok


def test_illegal_lba_is_a_device_error_not_a_hang(ch):
    # The LBA field fits, the medium does not: the device answers ILLEGAL REQUEST 21h/00h.
    with pytest.raises(IllegalRequest) as info:
        ch.run(command.Read16(lba=0, transfer_length=1), lba=[5, BLOCKS + 10])
    assert info.value.command.lba == BLOCKS + 10


# -- sharing the reactor ----------------------------------------------------------------


def test_jobs_on_several_devices_and_ios_share_one_reactor(sg_devices, reactor):
    chans = [settle(Channel.from_path(d, reactor=reactor)) for d in sg_devices[:2]]
    try:
        jobs = [c.run(command.Read10(lba=0, transfer_length=8), count=3000, queue_depth=16, lba="random",
                      async_=True) for c in chans]
        ios = chans[0].execute_many([command.Read10(lba=i, transfer_length=1) for i in range(64)], async_=True)
        assert reactor.wait(jobs + ios, timeout=60)
        assert all(j.stats.commands == 3000 for j in jobs)
        assert all(io.ok for io in ios)
        s = reactor.statistics()
        assert s["outstanding"] == 0
        assert all(v["jobs"] == 0 for v in s["channels"].values())
    finally:
        for c in chans:
            c.close()


def test_job_on_a_threaded_reactor(ch):
    ch.reactor.start()
    try:
        job = ch.run(command.Read10(lba=0, transfer_length=8), count=2000, queue_depth=16, lba="random",
                     async_=True)
        done = threading.Event()
        job.add_done_callback(lambda j: done.set())
        assert job.wait(timeout=60).commands == 2000
        assert done.wait(5)
    finally:
        ch.reactor.stop()


def test_cancel_ends_a_running_job_without_losing_commands(ch):
    job = ch.run(command.Read10(lba=0, transfer_length=8), seconds=60, queue_depth=16, lba="random",
                 async_=True)
    ch.reactor.wait(timeout=0.3)
    assert not job.returned
    job.cancel()
    stats = job.wait(timeout=10)
    assert stats.commands == stats.submitted and stats.commands > 0
    assert stats.seconds < 10


def test_closing_the_channel_ends_its_job(sg_device, reactor):
    before = fd_count()
    c = settle(Channel.from_path(sg_device, reactor=reactor))
    job = c.run(command.Read10(lba=0, transfer_length=8), seconds=60, queue_depth=16, lba="random",
                async_=True)
    reactor.wait(timeout=0.2)
    c.close()
    assert job.returned
    assert job.stats.commands == job.stats.submitted
    assert fd_count() == before
    s = reactor.statistics()
    assert s["outstanding"] == 0


def test_keyboard_interrupt_during_a_synchronous_job_drains_it(ch):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = fd_count()
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            ch.run(command.Read10(lba=0, transfer_length=8), seconds=60, queue_depth=16, lba="random")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert fd_count() == before
    assert ch.cmd.TestUnitReady().ok


def test_no_fd_is_left_behind_by_many_jobs(ch):
    before = fd_count()
    for qd in (1, 2, 16, 32):
        for async_ in (False, True):
            ch.run(command.TestUnitReady(), count=20, queue_depth=qd, async_=async_).wait()
    assert fd_count() == before


# -- refused before anything is sent --------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(count=10, queue_depth=0), "queue_depth=0 is out of range: it must be at least 1"),
    (dict(count=10, queue_depth=257), "queue_depth 257"),
    (dict(count=10, queue_depth=17, max_fds=1), "raise max_fds"),
    (dict(count=0), "count=0 is out of range: it must be at least 1"),
    (dict(seconds=0), "seconds=0 is not a finite, positive number"),
    (dict(), "count=, seconds="),
    (dict(count=1, lba="zigzag"), "'sequential', 'random'"),
    (dict(count=1, lba=[]), "empty"),
    (dict(count=1, lba=[-1]), "does not fit"),
    (dict(count=1, lba="random", lba_range=(0, 2 ** 33)), "16-byte command"),
    (dict(count=1, lba="random", lba_range=(10, 12)), "smaller than one command"),
    (dict(count=1, lba_range=(0, 100)), "lba_range= needs"),
])
def test_bad_job_arguments(ch, kwargs, match):
    before = fd_count()
    with pytest.raises(JobError, match=match):
        ch.run(command.Read10(lba=0, transfer_length=8), **kwargs)
    assert fd_count() == before


def test_read6_lba_cannot_be_varied(ch):
    with pytest.raises(JobError, match="Read10|10-, 16- or 32-byte"):
        ch.run(command.Read6(lba=0, transfer_length=1), count=5, lba="random")


def test_command_without_lba_cannot_be_varied(ch):
    with pytest.raises(JobError, match="no LOGICAL BLOCK ADDRESS"):
        ch.run(command.TestUnitReady(), count=5, lba="random")


def test_write_job_needs_data_and_permission(sg_device, reactor):
    with settle(Channel.from_path(sg_device, reactor=reactor)) as c:
        with pytest.raises(EncodeError, match="data="):
            c.run(command.Write10(lba=0, transfer_length=1), count=1)
    with settle(Channel.from_path(sg_device, reactor=reactor, read_only=True)) as c:
        with pytest.raises(UnsafeCommand):
            c.run(command.Write10(lba=0, transfer_length=1, data=bytes(BLOCK)), count=1)


def test_closed_channel_refuses_a_job(sg_device, reactor):
    c = Channel.from_path(sg_device, reactor=reactor)
    c.close()
    with pytest.raises(ChannelClosed):
        c.run(command.TestUnitReady(), count=1)


def test_job_repr_and_stats_text(ch):
    job = ch.run(command.Read10(lba=0, transfer_length=8), count=100, queue_depth=4, lba="random")
    assert repr(job) == "Job(Read10, queue_depth=4, returned, 100 done)"
    text = str(job.stats)
    assert text.startswith("100 commands in ") and "IOPS" in text and "p99" in text
    assert isinstance(job, Job)


def test_latency_can_be_off(ch):
    job = ch.run(command.TestUnitReady(), count=100, latency=False)
    assert job.stats.latency is None and job.stats.commands == 100


# -- other node kinds: the IO engine, one synchronous command at a time ----------------------


def other_nodes(sg_device):
    import glob

    name = os.path.basename(sg_device)
    disk = sorted(glob.glob(f"/sys/class/scsi_generic/{name}/device/block/*"))[0]
    hctl = os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{name}/device"))
    return ["/dev/" + os.path.basename(disk), f"/dev/bsg/{hctl}"]


@pytest.mark.parametrize("which", [0, 1], ids=["block", "bsg"])
def test_jobs_on_block_and_bsg_nodes_run_one_command_at_a_time(ch, sg_device, which):
    from sgpy.errors import SgError

    node = other_nodes(sg_device)[which]
    zero(ch, 0, 256)
    with Channel.from_path(node) as other:
        other.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        job = other.run(command.Write16(lba=0, transfer_length=2, data=stamp(b"bk", 2)), count=20,
                        lba="sequential", lba_range=(100, 140))
        assert job.engine == "io" and job.stats.commands == 20 and job.stats.latency.count == 20
        with pytest.raises(JobError, match="queue_depth must be 1"):
            other.run(command.TestUnitReady(), count=5, queue_depth=4)
        with pytest.raises(SgError, match="synchronous"):
            other.run(command.TestUnitReady(), count=5, async_=True)
        with pytest.raises(IllegalRequest):
            other.run(command.Read16(lba=0, transfer_length=1), lba=[BLOCKS + 1])
    blocks = read_blocks(ch, 0, 256)
    assert [i for i, b in enumerate(blocks) if b != bytes(BLOCK)] == list(range(100, 140))


# -- stamped writes and verified reads ---------------------------------------------------------


def test_stamped_writes_verify_and_every_kind_of_bad_block_is_named(ch):
    tag = 0x5EED_0001
    w = ch.run(command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)), lba="sequential",
               lba_range=(1024, 2048), count=128, queue_depth=8, stamp=tag)
    assert w.stats.commands == 128
    # Every block holds its own LBA and the tag.
    blocks = read_blocks(ch, 1024, 1024)
    assert all(b[:16] == (1024 + i).to_bytes(8, "big") + tag.to_bytes(8, "big") for i, b in enumerate(blocks))
    # Random verified reads over the range pass, at any depth, synchronous or not.
    for qd, async_ in ((1, False), (16, True)):
        job = ch.run(command.Read16(lba=0, transfer_length=8), lba="random", lba_range=(1024, 2048), count=500,
                     queue_depth=qd, verify=tag, async_=async_)
        assert job.wait().commands == 500
    # The wrong tag: the first block read is named.
    with pytest.raises(DataMismatch) as info:
        ch.run(command.Read16(lba=0, transfer_length=8), lba=[1040], verify=tag + 1)
    e = info.value
    assert (e.lba, e.found_lba, e.expected_tag, e.found_tag) == (1040, 1040, tag + 1, tag)
    assert e.command.lba == 1040 and "data mismatch at LBA 1040" in str(e)
    # A lost write (zeros), a misplaced block (another block's data): named by LBA, counted.
    ch.cmd.Write16(lba=1500, transfer_length=1, data=bytes(BLOCK))
    ch.cmd.Write16(lba=1601, transfer_length=1, data=ch.cmd.Read16(lba=1700, transfer_length=1).data)
    job = ch.run(command.Read16(lba=0, transfer_length=8), lba="sequential", lba_range=(1024, 2048), count=128,
                 queue_depth=4, verify=tag, stop_on_error=False)
    assert (job.stats.commands, job.stats.errors) == (126, 2)
    found = sorted((e.lba, e.found_lba, e.found_tag) for e in job.errors)
    assert found == [(1500, 0, 0), (1601, 1700, tag)]
    assert all(isinstance(e, DataMismatch) for e in job.errors)


@pytest.mark.parametrize("cmd, kwargs, match", [
    (command.Read16(lba=0, transfer_length=8), dict(stamp=1), "goes with write commands"),
    (command.Write16(lba=0, transfer_length=1, data=bytes(BLOCK)), dict(verify=1), "goes with read commands"),
    (command.TestUnitReady(), dict(verify=1), "goes with read commands"),
    (command.Read16(lba=0, transfer_length=8), dict(verify=-1), "tag from 0 to 2\\*\\*64-1"),
    (command.Read16(lba=0, transfer_length=8), dict(verify=2 ** 64), "tag from 0"),
])
def test_bad_stamp_arguments(ch, cmd, kwargs, match):
    with pytest.raises(JobError, match=match):
        ch.run(cmd, count=1, **kwargs)


# -- mixed reads and writes (fio's rw=randrw, rwmixread) ----------------------------------------


def mixed_plan(seed, count, first, units, step, read_percent, random_lbas=True):
    """The LBAs a seeded mixed job writes and reads, computed apart from the job (its generators,
    as documented: xorshift64* for the LBAs, a second one seeded from the same seed for the mix)."""
    from sgpy import _binding
    from sgpy.job import _LbaPlan, mix_is_write, mix_seed

    mode = _binding.LBA_RANDOM if random_lbas else _binding.LBA_SEQUENTIAL
    plan = _LbaPlan(mode, first, units, step, None, seed)
    state = mix_seed(seed)
    writes, reads = [], []
    for _ in range(count):
        state, w = mix_is_write(state, read_percent)
        (writes if w else reads).append(plan.next())
    return writes, reads


@pytest.mark.parametrize("qd", [1, 8])
def test_a_mixed_job_writes_exactly_where_its_plan_says_and_counts_each_direction(ch, qd):
    zero(ch, 0, 2048)
    w = command.Write16(lba=0, transfer_length=4, data=stamp(b"mix!", 4))
    job = ch.run(command.Read16(lba=0, transfer_length=4), write=w, read_percent=70, count=600, queue_depth=qd,
                 lba="random", lba_range=(512, 1536), seed=99)
    s = job.stats
    writes, reads = mixed_plan(99, 600, 512, 256, 4, 70)
    assert (s.commands, s.errors, s.submitted) == (600, 0, 600)
    assert (s.read.commands, s.write.commands) == (len(reads), len(writes))
    assert s.read.submitted + s.write.submitted == 600 and s.write.submitted == len(writes)
    assert 0.60 < len(reads) / 600 < 0.80
    assert s.read.bytes + s.write.bytes == s.bytes == 600 * 4 * BLOCK
    # latency: each direction has its own histogram; together they are the job's
    assert s.read.latency.count + s.write.latency.count == s.latency.count == 600
    assert s.write.latency.count == len(writes)
    assert min(s.read.latency.min_ns, s.write.latency.min_ns) == s.latency.min_ns
    assert max(s.read.latency.max_ns, s.write.latency.max_ns) == s.latency.max_ns
    hist = {}
    for part in (s.read, s.write):
        for low, high, n in part.latency.histogram:
            hist[(low, high)] = hist.get((low, high), 0) + n
    assert tuple((lo, hi, n) for (lo, hi), n in sorted(hist.items())) == s.latency.histogram
    assert "\n  read: " in str(s) and "\n  write: " in str(s)
    # the device holds the pattern exactly at the LBAs written, nowhere else
    blocks = read_blocks(ch, 0, 2048)
    written = sorted({lba + k for lba in writes for k in range(4)})
    assert [i for i, b in enumerate(blocks) if b != bytes(BLOCK)] == written
    assert set(reads) - set(writes)  # some chunks were only read: they stayed zero


def test_the_io_engine_mixes_the_same_way(ch, sg_device):
    """A block node runs the Python twin of the C loop: the same seed writes the same blocks."""
    disk = other_nodes(sg_device)[0]
    w = command.Write16(lba=0, transfer_length=2, data=stamp(b"tw", 2))
    footprints = []
    for target in (ch, None):
        zero(ch, 0, 1024)
        if target is None:
            with Channel.from_path(disk) as other:
                other.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
                job = other.run(command.Read16(lba=0, transfer_length=2), write=w, read_percent=40, count=200,
                                lba="random", lba_range=(0, 1024), seed=5)
                assert job.engine == "io"
        else:
            job = ch.run(command.Read16(lba=0, transfer_length=2), write=w, read_percent=40, count=200,
                         lba="random", lba_range=(0, 1024), seed=5, queue_depth=4)
            assert job.engine == "c"
        assert job.stats.read.commands + job.stats.write.commands == 200
        footprints.append((job.stats.write.commands,
                           [i for i, b in enumerate(read_blocks(ch, 0, 1024)) if b != bytes(BLOCK)]))
    assert footprints[0] == footprints[1]
    assert footprints[0][0] == len(mixed_plan(5, 200, 0, 512, 2, 40)[0])


def test_a_mixed_jobs_stamped_writes_verify_later_and_while_it_runs(ch):
    tag = 0x0D1C_5EED
    w = command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK))
    r = command.Read16(lba=0, transfer_length=8)
    # stamp the range, then mix reads (verified) and stamped writes of the same tag over it
    ch.run(w, lba="sequential", lba_range=(4096, 5120), count=128, queue_depth=8, stamp=tag)
    job = ch.run(r, write=w, read_percent=50, lba="random", lba_range=(4096, 5120), count=800, queue_depth=16,
                 stamp=tag, verify=tag, seed=3)
    assert job.stats.errors == 0 and job.stats.read.commands > 300 and job.stats.write.commands > 300
    # a mixed job's stamped writes verify afterwards: every block written holds its LBA and the tag
    zero(ch, 6144, 1024)
    job = ch.run(r, write=w, read_percent=30, lba="sequential", lba_range=(6144, 7168), count=128, queue_depth=4,
                 stamp=tag + 1, seed=4)
    writes, _ = mixed_plan(4, 128, 6144, 128, 8, 30, random_lbas=False)
    assert job.stats.write.commands == len(writes)
    job = ch.run(r, lba=writes, verify=tag + 1, queue_depth=4)
    assert job.stats.commands == len(writes)
    blocks = read_blocks(ch, 6144, 1024)
    for i, b in enumerate(blocks):
        lba = 6144 + i
        if lba - lba % 8 in writes:
            assert b[:16] == lba.to_bytes(8, "big") + (tag + 1).to_bytes(8, "big")
        else:
            assert b == bytes(BLOCK)
    # reads that meet a block without the stamp fail as any verified read does, naming the LBA
    ch.cmd.Write16(lba=4200, transfer_length=1, data=bytes(BLOCK))
    with pytest.raises(DataMismatch) as info:
        ch.run(r, write=w, read_percent=100, lba=[4096, 4200], stamp=tag, verify=tag)
    assert info.value.lba == 4200 and info.value.command.lba == 4200


def test_a_failing_write_in_a_mixed_job_names_the_write(ch):
    w = command.Write16(lba=0, transfer_length=1, data=bytes(BLOCK))
    job = ch.run(command.Read16(lba=0, transfer_length=1), write=w, read_percent=0, lba=[BLOCKS + 5],
                 count=3, stop_on_error=False)
    assert (job.stats.errors, job.stats.write.errors, job.stats.read.errors) == (3, 3, 0)
    assert all(isinstance(e, IllegalRequest) and e.command.name == "Write16" and e.command.lba == BLOCKS + 5
               for e in job.errors)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(read_percent=50), JobError, "read_percent= goes with write="),
    (dict(write=command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)), read_percent=101), JobError,
     "read_percent=101 is out of range"),
    (dict(write=command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)), read_percent=-1), JobError,
     "read_percent=-1 is out of range"),
    (dict(write=command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)), read_percent=True), TypeError,
     "read_percent must be an int"),
    (dict(write=command.Read16(lba=0, transfer_length=8)), JobError, "is a command that writes"),
    (dict(write=b"\x8a" + bytes(15)), TypeError, "write command template"),
    (dict(write=command.Write16(lba=0, transfer_length=4, data=bytes(4 * BLOCK))), JobError,
     "move the same blocks"),
    (dict(write=command.Write10(lba=0, transfer_length=8, data=bytes(8 * BLOCK))), JobError,
     "move the same blocks"),
    (dict(write=command.Write16(lba=0, transfer_length=8, data=bytes(BLOCK))), EncodeError,
     "transfer_length says 8 blocks"),
    (dict(write=command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)), verify=7), JobError,
     "same tag"),
    (dict(write=command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)), verify=7, stamp=8), JobError,
     "same tag"),
    (dict(write=command.Write16(lba=8, transfer_length=8, data=bytes(8 * BLOCK)), lba=None), JobError,
     "reads and writes one place"),
    (dict(rate_iops=0), JobError, "rate_iops=0 is out of range"),
    (dict(rate_iops=10 ** 9 + 1), JobError, "rate_iops=1000000001 is out of range"),
    (dict(rate_iops=2.5), TypeError, "rate_iops must be an int"),
    (dict(lba_range=(0, BLOCKS + 8)), JobError, "goes past the end"),
    (dict(lba_range=(BLOCKS, BLOCKS + 8)), JobError, "goes past the end"),
])
def test_bad_mix_rate_and_range_arguments(ch, kwargs, error, match):
    before = fd_count()
    options = dict(count=10, lba="random")
    options.update(kwargs)
    if options["lba"] is None:
        del options["lba"]
    with pytest.raises(error, match=match):
        ch.run(command.Read16(lba=0, transfer_length=8), **options)
    assert fd_count() == before


def test_a_mixed_job_template_must_be_the_read(ch):
    with pytest.raises(JobError, match="template is its read command"):
        ch.run(command.Write16(lba=0, transfer_length=1, data=bytes(BLOCK)),
               write=command.Write16(lba=0, transfer_length=1, data=bytes(BLOCK)), count=1)


def test_a_mixed_jobs_writes_need_permission(sg_device, reactor):
    with settle(Channel.from_path(sg_device, reactor=reactor, read_only=True)) as c:
        with pytest.raises(UnsafeCommand):
            c.run(command.Read16(lba=0, transfer_length=1),
                  write=command.Write16(lba=0, transfer_length=1, data=bytes(BLOCK)), count=1)


def test_the_whole_medium_is_still_a_range(ch):
    job = ch.run(command.Read16(lba=0, transfer_length=8), lba="random", lba_range=(BLOCKS - 8, BLOCKS), count=5)
    assert job.stats.commands == 5


# -- rate limit (fio's rate_iops) ------------------------------------------------------------------


@pytest.mark.parametrize("qd, async_", [(1, False), (8, False), (8, True)])
def test_a_rate_limited_job_sends_n_commands_per_second(ch, qd, async_):
    r = command.Read16(lba=0, transfer_length=8)
    free = ch.run(r, seconds=1, queue_depth=qd, lba="random").stats
    job = ch.run(r, seconds=2, queue_depth=qd, lba="random", rate_iops=200, async_=async_)
    s = job.wait()
    assert 2.0 <= s.seconds < 3.0
    assert 400 * 0.85 <= s.commands <= 400 * 1.15, s
    assert s.commands == s.submitted
    assert free.iops > 1.5 * s.iops  # without the limit it goes faster


def test_a_rate_limited_job_with_a_count_takes_its_time(ch):
    t0 = time.monotonic()
    job = ch.run(command.TestUnitReady(), count=100, rate_iops=250, queue_depth=4)
    took = time.monotonic() - t0
    assert job.stats.commands == 100
    assert 0.35 <= took < 1.5  # 100 commands at 250 per second: 0.4 s


def test_a_slow_rate_ends_at_the_deadline_and_cancel_ends_a_waiting_job(ch):
    t0 = time.monotonic()
    job = ch.run(command.TestUnitReady(), seconds=0.5, rate_iops=1, queue_depth=4)
    assert job.stats.commands == 1  # the first token at once, the next one due after the deadline
    assert time.monotonic() - t0 < 1.5
    job = ch.run(command.TestUnitReady(), seconds=60, rate_iops=2, queue_depth=4, async_=True)
    ch.reactor.wait(timeout=0.3)
    assert not job.returned
    job.cancel()
    s = job.wait(timeout=5)
    assert s.commands == s.submitted >= 1


def test_a_rate_limited_mixed_job_and_ctrl_c(ch):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = fd_count()
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            ch.run(command.Read16(lba=0, transfer_length=8),
                   write=command.Write16(lba=0, transfer_length=8, data=bytes(8 * BLOCK)),
                   seconds=60, queue_depth=8, lba="random", rate_iops=50)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert fd_count() == before  # the rate limit's timer closed with the job's fds
    assert ch.cmd.TestUnitReady().ok


def test_rate_limited_jobs_leave_no_fd_behind(ch):
    before = fd_count()
    for qd in (1, 16):
        for async_ in (False, True):
            ch.run(command.TestUnitReady(), count=20, queue_depth=qd, rate_iops=1000, async_=async_).wait()
    assert fd_count() == before


@pytest.mark.parametrize("which", [0, 1], ids=["block", "bsg"])
def test_rate_limited_jobs_on_block_and_bsg_nodes_sleep_between_commands(ch, sg_device, which):
    node = other_nodes(sg_device)[which]
    before = fd_count()
    with Channel.from_path(node) as other:
        other.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        job = other.run(command.Read16(lba=0, transfer_length=8), seconds=1, lba="random", rate_iops=150)
        assert job.engine == "io"
        assert 150 * 0.85 <= job.stats.commands <= 150 * 1.15, job.stats
        t0 = time.monotonic()
        assert other.run(command.TestUnitReady(), count=40, rate_iops=100).stats.commands == 40
        assert 0.35 <= time.monotonic() - t0 < 1.5  # 40 commands at 100 per second
    assert fd_count() == before
