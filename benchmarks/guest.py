"""The measuring half of the benchmark harness; runs inside the QEMU sandbox.

``benchmarks/run.py`` boots the guest once and runs this script there.  It
measures every workload in interleaved rounds (all workloads once, then all
again, ...), so that slow drifts of the emulator hit every contender alike,
and prints one ``RESULT {json}`` line per measurement on standard output;
progress goes to standard error.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import subprocess
import sys
import time
from functools import partial
from typing import Any, Callable, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sgpy import Channel, Reactor, _binding, command, handler  # noqa: E402
from sgpy.job import JobStats  # noqa: E402
from sgpy.sandbox import guest  # noqa: E402

XFER = 4096
RING = 4096


class Unsupported(Exception):
    """The contender cannot run this workload at all."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------
# sgpy workloads (the Python API, as an application would use it)


def read_ring(ch: Channel, seed: int) -> List[Any]:
    """4096 READ(10)s of 4 KiB at random aligned LBAs, built once and reused."""
    per = XFER // ch.block_size
    blocks = _capacity(ch)
    rnd = random.Random(seed)
    return [command.Read10(lba=rnd.randrange(blocks // per) * per, transfer_length=per) for _ in range(RING)]


def _capacity(ch: Channel) -> int:
    io = ch.execute(command.ReadCapacity10())
    return int.from_bytes(io.data[0:4], "big") + 1  # SBC-4 table 67: RETURNED LOGICAL BLOCK ADDRESS


def sgpy_sync_tur(ch: Channel, seconds: float) -> float:
    tur = command.TestUnitReady()
    execute = ch.execute
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(256):
            execute(tur)
        n += 256
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


def sgpy_sync_read(ch: Channel, ring: List[Any], seconds: float) -> float:
    execute = ch.execute
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for cmd in ring[:256]:
            execute(cmd)
        ring.append(ring.pop(0))
        n += 256
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


def sgpy_async(chans: Sequence[Channel], rings: Sequence[List[Any]], qd: int, seconds: float,
               reactor: Reactor) -> float:
    """Keep ``qd`` READ(10)s in flight on each channel: each completion submits the next one."""
    state = {"n": 0, "stop": False, "bad": 0}
    pos = [0] * len(chans)
    index = {id(ch): i for i, ch in enumerate(chans)}

    def on_done(io: Any) -> None:
        state["n"] += 1
        if io.exception is not None:
            state["bad"] += 1
        if state["stop"]:
            return
        i = index[id(io.channel)]
        p = pos[i] = (pos[i] + 1) % RING
        io.channel.execute(rings[i][p], async_=True).add_done_callback(on_done)

    t0 = time.perf_counter()
    for i, ch in enumerate(chans):
        for _ in range(qd):
            p = pos[i] = (pos[i] + 1) % RING
            ch.execute(rings[i][p], async_=True).add_done_callback(on_done)
    reactor.wait(timeout=seconds)
    state["stop"] = True
    reactor.wait()
    t = time.perf_counter()
    if state["bad"]:
        raise RuntimeError(f"{state['bad']} commands failed")
    return state["n"] / (t - t0)


def sgpy_execute_many(ch: Channel, ring: List[Any], seconds: float) -> float:
    """``execute_many`` of 256 prebuilt READ(10)s at a time on a one-fd channel (QD 16: sg's limit per fd)."""
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    p = 0
    while True:
        batch = ring[p:p + 256]
        p = (p + 256) % RING
        ch.execute_many(batch)
        n += len(batch)
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


# ---------------------------------------------------------------------------
# The bare Python loop: what one C call per command costs from Python, with
# no engine around it (sgpy's own binding, no IO objects, no bookkeeping).


def growth(ch: Channel, reactor: Reactor, ring: List[Any], sizes: Sequence[int], report: bool = True) -> None:
    """``execute_many(async_=True)`` of N prebuilt commands then one wait, for each N: the per-command
    cost and resident memory as N grows, garbage collector on (issue: flat from 1k to 1M).

    TEST UNIT READY for every N (no data buffer: the IO objects alone); 4 KiB READ(10)s up to 100k (a
    million 4 KiB buffers would not fit the guest's memory).  RSS is read before the batch, once it
    returned, and after the list is dropped without gc.collect(): an IO with a reference cycle would
    stay until the collector ran.
    """
    tur = command.TestUnitReady()
    for what in ("TEST UNIT READY", "READ(10) 4 KiB"):
        for n in sizes:
            if what.startswith("READ") and n > 100_000:
                continue
            cmds = [tur] * n if what.startswith("TEST") else [ring[i % RING] for i in range(n)]
            gc.collect()
            collections0 = sum(s["collections"] for s in gc.get_stats())
            rss0 = rss_kib()
            t0 = time.perf_counter()
            ios = ch.execute_many(cmds, async_=True)
            reactor.wait(ios)
            t = time.perf_counter() - t0
            rss_peak = rss_kib()
            failed = sum(1 for io in ios if io.exception is not None)
            del ios
            rss_end = rss_kib()
            runs = sum(s["collections"] for s in gc.get_stats()) - collections0
            if not report:
                continue
            log(f"growth {what} N={n:,}: {t / n * 1e6:,.1f} us/command; RSS {rss0:,} -> {rss_peak:,} -> "
                f"{rss_end:,} KiB; {runs} collections; {failed} failed")
            emit(kind="growth", workload=what, n=n, seconds=t, us=t / n * 1e6, rss_start_kib=rss0,
                 rss_peak_kib=rss_peak, rss_end_kib=rss_end, gc_runs=runs, failed=failed)
            del cmds


def python_sync(dev: str, cdb: bytes, direction: int, length: int, seconds: float) -> float:
    """SG_IO in a Python loop: one ``SyncCaller.call`` per command."""
    fd = os.open(dev, os.O_RDWR)
    try:
        call = _binding.SyncCaller(fd).call
        buf = bytearray(max(length, 1))
        ptr = _binding.buffer_pointer(buf) if length else _binding.NULL
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while True:
            for _ in range(256):
                if call(cdb, direction, ptr, length, 60000).status:
                    raise RuntimeError("a command of the Python loop failed")
            n += 256
            t = time.perf_counter()
            if t >= end:
                return n / (t - t0)
    finally:
        os.close(fd)


def python_async(dev: str, ring: List[Any], qd: int, seconds: float) -> float:
    """``qd`` READ(10)s in flight from a Python loop: per command one blocking reap, one fill, one submit."""
    fd = os.open(dev, os.O_RDWR)  # blocking: read() waits for a completion
    try:
        slots = _binding.new_slots(qd)
        ptrs = _binding.slot_pointers(1)
        hdrs = _binding.new_headers(1)
        bufs = [bytearray(XFER) for _ in range(qd)]
        cbufs = [_binding.buffer_pointer(b) for b in bufs]
        cdbs = [c.cdb for c in ring]
        fill, submit, reap = _binding.fill, _binding.submit, _binding.reap
        d = _binding.SG_DXFER_FROM_DEV
        p = 0
        for i in range(qd):
            fill(slots + i, d, cdbs[p], cbufs[i], XFER, 60000, i)
            p += 1
            ptrs[0] = slots + i
            submit(fd, ptrs, 1)
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        hdr = hdrs[0]
        while True:
            for _ in range(256):
                reap(fd, hdrs, 1)
                if hdr.status or hdr.host_status or hdr.driver_status:
                    raise RuntimeError("a command of the Python loop failed")
                i = hdr.pack_id
                fill(slots + i, d, cdbs[p], cbufs[i], XFER, 60000, i)
                p = (p + 1) % RING
                ptrs[0] = slots + i
                submit(fd, ptrs, 1)
            n += 256
            t = time.perf_counter()
            if t >= end:
                break
        for _ in range(qd):
            reap(fd, hdrs, 1)
        return n / (t - t0)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# sgpy jobs (Channel.run: the submit/complete loop in C)


class Jobs:
    """sgpy's jobs as a contender; keeps the last measurement's stats.

    A job sends one command template many times with the whole
    submit/complete loop in the extension, so it shows what sgpy costs when
    Python is out of the per-command path.  Jobs record latencies (the
    default, ``latency=True``), so the numbers include that work; ``last``
    holds the stats of the latest measurement, for the latency line.
    """

    def __init__(self) -> None:
        self.last: List[JobStats] = []

    @staticmethod
    def _read(ch: Channel) -> Any:
        """READ(10) of 4 KiB; the job picks the LBA per command."""
        return command.Read10(lba=0, transfer_length=XFER // ch.block_size)

    def _checked(self, stats: Sequence[JobStats]) -> None:
        bad = sum(s.errors for s in stats)
        if bad:
            raise RuntimeError(f"{bad} job commands failed")
        self.last = list(stats)

    def sync_tur(self, ch: Channel, seconds: float) -> float:
        """TEST UNIT READY back to back, one SG_IO ioctl per command."""
        stats = ch.run(command.TestUnitReady(), seconds=seconds).stats
        self._checked([stats])
        return stats.iops

    def sync_read(self, ch: Channel, seconds: float) -> float:
        """4 KiB READ(10)s at random aligned LBAs, one at a time (SG_IO)."""
        stats = ch.run(self._read(ch), seconds=seconds, queue_depth=1, lba="random").stats
        self._checked([stats])
        return stats.iops

    def async_read(self, chans: Sequence[Channel], qd: int, seconds: float, reactor: Reactor) -> float:
        """One job per channel, ``qd`` random 4 KiB READ(10)s in flight each, all on ``reactor``.

        The jobs start together and are waited for together; IOPS is every
        job's commands over the longest job's seconds.
        """
        jobs = [ch.run(self._read(ch), async_=True, seconds=seconds, queue_depth=qd, lba="random")
                for ch in chans]
        reactor.wait(jobs)
        stats = [job.wait() for job in jobs]  # raises what ended a job early
        self._checked(stats)
        return sum(s.commands for s in stats) / max(s.seconds for s in stats)


# ---------------------------------------------------------------------------
# the others, as subprocesses


def floor(*args: str) -> float:
    out = subprocess.run([FLOOR, *args], check=True, stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"ops (\d+) seconds ([\d.]+)", out)
    if not m:
        raise RuntimeError(f"floor {' '.join(args)}: {out!r}")
    return int(m.group(1)) / float(m.group(2))


def fio(devs: Sequence[str], qd: int, seconds: float) -> float:
    argv = ["fio", "--output-format=json", "--ioengine=sg", "--rw=randread", f"--bs={XFER}",
            f"--iodepth={qd}", "--norandommap", "--randrepeat=0", "--time_based",
            f"--runtime={max(1, round(seconds))}", "--group_reporting"]
    for i, d in enumerate(devs):
        argv += [f"--name=j{i}", f"--filename={d}"]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout
    if proc.returncode != 0 or "{" not in out:
        # fio's sg engine keeps every command on one fd, and sg takes at
        # most 16 per fd: deeper queues fail (EDOM).
        why = [line for line in out.splitlines() if "error" in line.lower() or line.startswith("fio:")]
        raise Unsupported(why[0].strip() if why else f"fio exited with status {proc.returncode}")
    data = json.loads(out[out.index("{"):])
    return float(sum(job["read"]["iops"] for job in data["jobs"]))


def sg_dd(tool: str, dev: str, blocks: int, threads: int = 0) -> float:
    argv = [tool, f"if={dev}", "of=/dev/null", "bs=512", f"bpt={XFER // 512}", f"count={blocks}", "time=1"]
    if threads:
        argv.append(f"thr={threads}")
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(r"time to (?:transfer|read) data(?: was|:)\s*([\d.]+) secs", proc.stdout)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"{tool}: {proc.stdout.strip()}")
    return (blocks // (XFER // 512)) / float(m.group(1))


def python_loop(seconds: float) -> float:
    """The Python CPU probe: iterations of a bare loop per second."""
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(10000):
            n += 1
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


# ---------------------------------------------------------------------------


def set_delay(ndelay: int) -> None:
    """delay=0 (complete inside write()) or ndelay=N nanoseconds (a device that answers later)."""
    if ndelay:
        guest.write_knob("ndelay", ndelay)
    else:
        guest.write_knob("ndelay", 0)  # back to scsi_debug's default jiffy delay ...
        guest.write_knob("delay", 0)  # ... then to none


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--floor", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--million", type=int, default=1_000_000)
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--skip-rounds", action="store_true", help="only the long runs (for a quick check)")
    p.add_argument("--growth", default="1000,10000,100000,1000000",
                   help="batch sizes of the growth rows, comma-separated ('' to skip)")
    p.add_argument("--only", default="", help="comma-separated words: run only the workloads naming one")
    args = p.parse_args(argv)
    global FLOOR
    FLOOR = args.floor
    secs = args.seconds
    devs = guest.sg_devices()
    log(f"guest: {len(devs)} sg devices, kernel {os.uname().release}")
    emit(kind="info", kernel=os.uname().release)
    reactor = Reactor()
    chans = [Channel.from_path(d, reactor=reactor) for d in devs[:4]]
    rings = [read_ring(ch, seed=i) for i, ch in enumerate(chans)]
    ch0, ring0 = chans[0], rings[0]

    jobs = Jobs()
    # (setting, workload, contender, fn, whether to report the job's latency after it)
    work: List[Tuple[int, str, str, Callable[[], float], bool]] = []

    only = [w for w in args.only.split(",") if w]

    def add(setting: int, workload: str, who: str, fn: Callable[[], float], latency: bool = False) -> None:
        if not only or any(w in workload for w in only):
            work.append((setting, workload, who, fn, latency))

    dev0 = devs[0]
    one_fd = Channel.from_path(dev0, reactor=reactor, max_fds=1)  # execute_many at QD 16 exactly
    tur_cdb = command.TestUnitReady().cdb
    for nd in (0, 50000):
        if nd == 0:
            add(nd, "sync TEST UNIT READY", "sgpy", lambda: sgpy_sync_tur(ch0, secs))
            add(nd, "sync TEST UNIT READY", "sgpy job", lambda: jobs.sync_tur(ch0, secs))
            add(nd, "sync TEST UNIT READY", "C", lambda: floor("tur", str(secs), dev0))
            add(nd, "sync TEST UNIT READY", "Python loop",
                lambda: python_sync(dev0, tur_cdb, _binding.SG_DXFER_NONE, 0, secs))
        add(nd, "sync READ(10) 4 KiB", "sgpy", lambda: sgpy_sync_read(ch0, ring0, secs))
        add(nd, "sync READ(10) 4 KiB", "sgpy job", lambda: jobs.sync_read(ch0, secs))
        add(nd, "sync READ(10) 4 KiB", "C", lambda: floor("read", str(secs), dev0))
        add(nd, "sync READ(10) 4 KiB", "Python loop",
            lambda: python_sync(dev0, ring0[0].cdb, _binding.SG_DXFER_FROM_DEV, XFER, secs))
        for qd in (1, 16, 64):
            wl = f"async randread QD {qd}"
            add(nd, wl, "sgpy", partial(sgpy_async, [ch0], [ring0], qd, secs, reactor))
            if qd == 16:
                add(nd, wl, "sgpy many", lambda: sgpy_execute_many(one_fd, ring0, secs))
                add(nd, wl, "Python loop", lambda: python_async(dev0, ring0, 16, secs))
            add(nd, wl, "sgpy job", partial(jobs.async_read, [ch0], qd, secs, reactor),
                latency=nd == 0 and qd == 16)
            add(nd, wl, "fio", partial(fio, [dev0], qd, secs))
            add(nd, wl, "C", partial(floor, "async", str(secs), str(qd), dev0))
        wl = f"async randread QD 16 x {len(chans)} devices"
        add(nd, wl, "sgpy", lambda: sgpy_async(chans, rings, 16, secs, reactor))
        add(nd, wl, "sgpy job", lambda: jobs.async_read(chans, 16, secs, reactor))
        add(nd, wl, "fio", lambda: fio(devs[:4], 16, secs))
        add(nd, wl, "C", lambda: floor("async", str(secs), "16", *devs[:4]))
        if nd == 0:
            add(nd, "sequential 4 KiB reads", "sg_dd", lambda: sg_dd("sg_dd", dev0, 65536))
            add(nd, "sequential 4 KiB reads", "sgp_dd", lambda: sg_dd("sgp_dd", dev0, 65536, threads=4))

    # Warm up: the emulator translates code on first use, Python specialises.
    log("guest: warming up")
    set_delay(0)
    sgpy_sync_tur(ch0, 0.5)
    sgpy_sync_read(ch0, ring0, 0.5)
    sgpy_async([ch0], [ring0], 16, 0.5, reactor)
    sgpy_async(chans, rings, 16, 0.5, reactor)
    sgpy_execute_many(one_fd, ring0, 0.5)
    python_sync(dev0, tur_cdb, _binding.SG_DXFER_NONE, 0, 0.5)
    python_async(dev0, ring0, 16, 0.5)
    jobs.sync_tur(ch0, 0.5)
    jobs.sync_read(ch0, 0.5)
    jobs.async_read([ch0], 16, 0.5, reactor)
    jobs.async_read(chans, 16, 0.5, reactor)

    emit(kind="probe", what="python loop", value=python_loop(1.0))
    emit(kind="probe", what="C syscall loop", value=floor("syscall", "1.0"))
    for r in range(args.rounds if not args.skip_rounds else 0):
        for nd in (0, 50000):
            set_delay(nd)
            for setting, wl, who, fn, latency in work:
                if setting != nd:
                    continue
                try:
                    v = fn()
                except Unsupported as exc:
                    log(f"round {r + 1}: {wl}: {who}: cannot run it: {exc}")
                    emit(kind="unsupported", setting=nd, workload=wl, who=who, why=str(exc))
                    continue
                log(f"round {r + 1} {'delay=0' if nd == 0 else f'ndelay={nd}'}: {wl}: {who}: {v:,.0f}/s")
                emit(kind="iops", round=r, setting=nd, workload=wl, who=who, value=v)
                if latency and jobs.last and jobs.last[0].latency is not None:
                    lat = jobs.last[0].latency
                    emit(kind="latency", round=r, setting=nd, workload=wl, who=who,
                         p50_us=lat.percentile(50) / 1000.0, p99_us=lat.percentile(99) / 1000.0)
    set_delay(0)
    emit(kind="probe", what="python loop", value=python_loop(1.0))
    emit(kind="probe", what="C syscall loop", value=floor("syscall", "1.0"))

    sizes = [int(x) for x in args.growth.split(",") if x.strip()]
    if sizes:
        log(f"guest: growth rows, execute_many of {', '.join(f'{n:,}' for n in sizes)} commands")
        growth(one_fd, reactor, ring0, [1000, 10000], report=False)  # warm-up
        growth(one_fd, reactor, ring0, sizes)

    # One million commands: resident memory must stay flat.
    if args.million:
        log(f"guest: {args.million:,} commands at QD 16")
        done = 0
        start_rss = None
        t0 = time.perf_counter()
        chunk = max(1, args.million // 20)
        state = {"left": args.million, "n": 0}
        pos = [0]

        def chain(io: Any) -> None:
            state["n"] += 1
            if io.exception is not None:
                raise SystemExit(f"command failed: {io.exception}")
            if state["left"] > 0:
                state["left"] -= 1
                pos[0] = (pos[0] + 1) % RING
                ch0.execute(ring0[pos[0]], async_=True).add_done_callback(chain)

        for _ in range(16):
            state["left"] -= 1
            ch0.execute(ring0[_], async_=True).add_done_callback(chain)
        rss_points = []
        while state["n"] < args.million:
            reactor.wait(timeout=0.2)
            if start_rss is None and state["n"] >= chunk:
                start_rss = rss_kib()
            rss_points.append((state["n"], rss_kib()))
        reactor.wait()
        done = state["n"]
        t = time.perf_counter() - t0
        emit(kind="million", commands=done, seconds=t, rss_start_kib=start_rss or rss_kib(),
             rss_end_kib=rss_kib(), rss_max_kib=max(v for _, v in rss_points) if rss_points else rss_kib())

        # The same million through one job: nothing is allocated per command.
        log(f"guest: {args.million:,} commands at QD 16 in one job")
        per = XFER // ch0.block_size
        t0 = time.perf_counter()
        job = ch0.run(command.Read10(lba=0, transfer_length=per), count=args.million, queue_depth=16,
                      lba="random", async_=True)
        start_rss = None
        rss_points = []
        while not job.returned:
            reactor.wait([job], timeout=0.2)
            if start_rss is None and job.stats.commands >= chunk:
                start_rss = rss_kib()
            rss_points.append(rss_kib())
        stats = job.wait()
        emit(kind="million job", commands=stats.commands, seconds=time.perf_counter() - t0,
             rss_start_kib=start_rss or rss_kib(), rss_end_kib=rss_kib(),
             rss_max_kib=max(rss_points) if rss_points else rss_kib())

    # Many channels on one reactor: per-command cost against one channel's.
    one_fd.close()
    if args.channels:
        for ch in chans:
            ch.close()
        n = args.channels
        tgts = max(1, n // 4)
        log(f"guest: reloading scsi_debug with {tgts * 4} devices")
        subprocess.run(["rmmod", "sd_mod"], stderr=subprocess.DEVNULL)
        guest.unload()
        ko = os.environ["SGPY_SANDBOX_SCSI_DEBUG_KO"]
        subprocess.run(["insmod", ko, "delay=0", "dev_size_mb=16", f"num_tgts={tgts}", "max_luns=4"],
                       check=True)
        deadline = time.monotonic() + 300
        while len(guest.sg_devices()) < tgts * 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        guest._make_nodes()
        many_devs = guest.sg_devices()
        log(f"guest: {len(many_devs)} devices")
        # Default pools: "one channel" below then spreads its 16 commands over
        # 16 fds, as the 256 channels do over one fd each.
        many = [Channel.from_path(d, reactor=reactor) for d in many_devs]
        for ch in many:  # new devices report a power-on UNIT ATTENTION first
            ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        many_rings = [read_ring(ch, seed=i) for i, ch in enumerate(many)]
        one = many[:1]
        sgpy_async(many, many_rings, 1, 0.5, reactor)
        for r in range(args.rounds):
            a = sgpy_async(one, many_rings[:1], 16, secs, reactor)
            b = sgpy_many(many, many_rings, 16, secs, reactor)
            log(f"round {r + 1}: 1 channel QD 16: {a:,.0f}/s; {len(many)} channels, 16 in flight: {b:,.0f}/s")
            emit(kind="channels", round=r, channels=len(many), one=a, many=b)
        for ch in many:
            ch.close()
    reactor.close()
    return 0


def sgpy_many(chans: Sequence[Channel], rings: Sequence[List[Any]], inflight: int, seconds: float,
              reactor: Reactor) -> float:
    """``inflight`` READ(10)s in flight in total, each new one on the next channel in turn."""
    state = {"n": 0, "stop": False, "next": 0}
    m = len(chans)

    def on_done(io: Any) -> None:
        state["n"] += 1
        if state["stop"]:
            return
        submit()

    def submit() -> None:
        i = state["next"]
        state["next"] = (i + 1) % m
        ring = rings[i]
        chans[i].execute(ring[state["n"] % RING], async_=True).add_done_callback(on_done)

    t0 = time.perf_counter()
    for _ in range(inflight):
        submit()
    reactor.wait(timeout=seconds)
    state["stop"] = True
    reactor.wait()
    return state["n"] / (time.perf_counter() - t0)


FLOOR = ""

if __name__ == "__main__":
    sys.exit(main())
