"""A stateful fuzzer of the engine: hypothesis drives channels, reactors, jobs,
threads, faults, hot unplug and Ctrl-C against two scsi_debug disks with
separate stores, and checks the engine's invariants after every step.

The device: ``add_host=2 per_host_store=1 num_tgts=1`` gives two disks, each
on its own SCSI host with its own backing store (drivers/scsi/scsi_debug.c:
``per_host_store`` gives every ``sdebug_host_info`` its own ``sdeb_store_info``),
so a block written to one disk can never show on the other.  Reads of
``medium_error_start .. +count-1`` fail with MEDIUM ERROR while ``opts`` has
bit 2; bit 4 with ``every_nth`` drops commands (the kernel then times them
out); ``ndelay`` with ``random=1`` completes commands late and out of order.

Every block the machine writes is stamped (:func:`stamp`): its LBA and a tag
naming the disk and a sequence number, then filler derived from the tag, the
layout ``Channel.run(stamp=TAG)`` writes too.  The model keeps, per disk and
LBA, the stamps the block may hold: every write issued to it since the block
was last read back while nothing was in flight.  A write whose fate is
unknown (interrupted, dropped, abandoned at close or unplug) stays a
candidate for good.

Invariants, checked after every step (``check_*`` below):

* every IO finishes exactly once: its verify handler and its done callback
  ran once when ``returned`` is True, never before; nothing is left pending
  when the example ends, and every wait is bounded (a hang is a failure);
* every outcome is one the step's faults allow (MediumError only on the bad
  range while injected, and then always; CommandTimeout only for dropped
  commands; DeviceGone only after an unplug; ChannelClosed only after a
  close; UnitAttention only after a re-add or an abort), and a read returns
  stamps the model allows;
* every block of each disk holds a stamp written to that disk for that LBA
  (read through the block device with O_DIRECT, independently of sgpy);
* nothing reaches a device after its channel's ``close()`` returned: calls
  made afterwards fail with ChannelClosed, their stamps never appear, and
  the disk's ``iorequest_cnt`` (commands the SCSI midlayer dispatched to it)
  does not move while threads and jobs keep trying;
* bad arguments fail at the call, with ValueError/TypeError or an sgpy
  error, before anything reaches the device, and leave the channel usable;
* reactor statistics balance: ``completed + failed + outstanding`` equals the
  IOs (and asynchronous jobs) the model handed to that reactor,
  ``outstanding`` equals what the model has pending, and
  ``completed <= submitted <= handed over``.  (The issue's shorthand
  ``submitted = completed + failed + outstanding`` cannot hold as such: the
  reactor's ``submitted`` counts commands written to the kernel, and a
  queued command that fails with ChannelClosed was never written.);
* with no channel open, the process has exactly its baseline fds plus three
  per open reactor (epoll and the wake-up pipe); after an example RSS stays
  within a margin of the first example's, and no payload of a closed
  channel's IOs is still alive (the engine keeps no data).

CI runs a bounded number of examples (``CI_EXAMPLES`` x ``CI_STEPS``).
``SGPY_SOAK=N`` runs N examples, ``SGPY_SOAK=600s`` runs for 600 seconds;
either way the counts are printed at the end.
"""

from __future__ import annotations

import collections
import gc
import mmap
import os
import signal
import struct
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

hypothesis = pytest.importorskip("hypothesis")  # noqa: E402  (the test extra)
from hypothesis import HealthCheck, Phase, Verbosity, settings, strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sgpy import Channel, Reactor, command  # noqa: E402
from sgpy.constants import Direction  # noqa: E402
from sgpy.errors import (  # noqa: E402
    ChannelClosed,
    CommandTimeout,
    DeviceGone,
    MediumError,
    SgError,
    UnitAttention,
)
from sgpy.sandbox import guest  # noqa: E402

BLOCK = 512
#: The blocks of each disk the machine writes, reads and checks.
NLBA = 64
#: Reads of these LBAs fail with MEDIUM ERROR while opts bit 2 is set.
BAD_START, BAD_COUNT = 40, 4
#: Most open channels at once.
MAX_CHANNELS = 6
#: The longest any wait may take before it counts as a hang (seconds).
BOUND = 30.0
#: Command timeout (ms) of the IOs sent while commands are being dropped.
DROP_TIMEOUT_MS = 400
#: RSS growth allowed over the first example's (bytes).
RSS_MARGIN = 48 << 20

CI_EXAMPLES = 10
CI_STEPS = 30

PARAMS = dict(add_host=2, per_host_store=1, num_tgts=1, dev_size_mb=8, delay=0,
              medium_error_start=BAD_START, medium_error_count=BAD_COUNT)

_MAGIC = 0x5347
_SEQ_BITS = 40


# -- stamps ---------------------------------------------------------------------


def tag_of(disk: int, seq: int) -> int:
    return (_MAGIC << 48) | (disk << _SEQ_BITS) | seq


def filler(tag: int) -> bytes:
    """What follows a block's 16-byte stamp: the same for every block of a write."""
    unit = struct.pack(">QQ", tag, tag ^ 0xFFFFFFFFFFFFFFFF)
    return (unit * (BLOCK // 16))[: BLOCK - 16]


def stamp(disk: int, lba: int, seq: int) -> bytes:
    tag = tag_of(disk, seq)
    return lba.to_bytes(8, "big") + tag.to_bytes(8, "big") + filler(tag)


def stamps(disk: int, lba: int, n: int, seq: int) -> bytes:
    return b"".join(stamp(disk, lba + i, seq) for i in range(n))


def decode(block: bytes) -> Optional[tuple]:
    """``(disk, lba, seq)`` of a whole, well-formed stamp; None for anything else."""
    lba = int.from_bytes(block[0:8], "big")
    tag = int.from_bytes(block[8:16], "big")
    if tag >> 48 != _MAGIC or block[16:BLOCK] != filler(tag):
        return None
    return (tag >> _SEQ_BITS) & 0xFF, lba, tag & ((1 << _SEQ_BITS) - 1)


class Payload(bytearray):
    """Write data the test can hold a weak reference to."""


# -- the devices ------------------------------------------------------------------


def _node(sysdir: str, kind: int) -> str:
    path = "/dev/" + os.path.basename(sysdir)
    if not os.path.exists(path):
        with open(os.path.join(sysdir, "dev"), encoding="ascii") as f:
            major, minor = (int(x) for x in f.read().strip().split(":"))
        os.mknod(path, 0o600 | kind, os.makedev(major, minor))
    return path


class Disk:
    """One scsi_debug disk (a host of its own) and the model of its blocks."""

    def __init__(self, idx: int, host: int) -> None:
        self.idx = idx
        self.host = host
        self.present = True
        #: Stamps (sequence numbers) each block may hold.
        self.cand: List[Set[int]] = [set() for _ in range(NLBA)]
        #: Stamps that may still land at any time; never pruned.
        self.uncertain: List[Set[int]] = [set() for _ in range(NLBA)]
        #: Every stamp that ever became a candidate of each block, in order: a read
        #: may see any of those that arrived while it was pending.
        self.log: List[List[int]] = [[] for _ in range(NLBA)]
        self.ua_possible = False

    def _sdev(self) -> Optional[str]:
        base = f"/sys/class/scsi_host/host{self.host}/device"
        for target in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            if not target.startswith("target"):
                continue
            for lun in sorted(os.listdir(os.path.join(base, target))):
                p = os.path.join(base, target, lun)
                if ":" in lun and os.path.isdir(os.path.join(p, "scsi_generic")):
                    return p
        return None

    def sg_path(self) -> Optional[str]:
        sdev = self._sdev()
        if sdev is None:
            return None
        names = os.listdir(os.path.join(sdev, "scsi_generic"))
        return _node(f"/sys/class/scsi_generic/{names[0]}", 0o020000) if names else None

    def block_path(self) -> Optional[str]:
        sdev = self._sdev()
        if sdev is None or not os.path.isdir(os.path.join(sdev, "block")):
            return None
        names = os.listdir(os.path.join(sdev, "block"))
        return _node(f"/sys/block/{names[0]}", 0o060000) if names else None

    def iorequests(self) -> int:
        """Commands the SCSI midlayer dispatched to this disk (scsi_dispatch_cmd)."""
        sdev = self._sdev()
        assert sdev is not None, f"disk {self.idx} is not attached"
        with open(os.path.join(sdev, "iorequest_cnt"), encoding="ascii") as f:
            return int(f.read().strip(), 0)

    def delete(self) -> None:
        sdev = self._sdev()
        assert sdev is not None
        with open(os.path.join(sdev, "delete"), "w", encoding="ascii") as f:
            f.write("1")

    def rescan(self) -> None:
        with open(f"/sys/class/scsi_host/host{self.host}/scan", "w", encoding="ascii") as f:
            f.write("- - -")
        deadline = time.monotonic() + 30
        while self.sg_path() is None or self.block_path() is None:
            assert time.monotonic() < deadline, f"disk {self.idx} did not come back after a rescan"
            time.sleep(0.02)

    def read_all(self, exclude_bad: bool) -> Dict[int, bytes]:
        """Every model block, through the block device with O_DIRECT (sgpy plays no part)."""
        path = self.block_path()
        assert path is not None
        ranges = [(0, NLBA)]
        if exclude_bad:
            ranges = [(0, BAD_START), (BAD_START + BAD_COUNT, NLBA)]
        out: Dict[int, bytes] = {}
        deadline = time.monotonic() + 10
        while True:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
                break
            except OSError:  # sd still probing a re-added disk
                assert time.monotonic() < deadline, f"cannot open {path}"
                time.sleep(0.05)
        try:
            for first, stop in ranges:
                buf = mmap.mmap(-1, (stop - first) * BLOCK)
                got = os.preadv(fd, [buf], first * BLOCK)
                assert got == (stop - first) * BLOCK, (path, first, got)
                for i in range(stop - first):
                    out[first + i] = bytes(buf[i * BLOCK:(i + 1) * BLOCK])
                buf.close()
        finally:
            os.close(fd)
        return out


def set_knob(name: str, value: object) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            guest.write_knob(name, value)
            return
        except Exception:
            # ndelay/delay refuse a change while scsi_debug holds commands (EBUSY)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# -- the model of one submission -------------------------------------------------


GONE, CLOSED, MEDIUM, DROP, INTERRUPTED = "gone", "closed", "medium", "drop", "interrupted"
#: Medium errors were injected for the whole life of the command; UA expected on opening.
MEDIUM_WHOLE, OPENING = "medium-whole", "opening"
COUNT_LOCK = threading.Lock()


class Rec:
    """One command (or job) the machine sent, and what may become of it."""

    __slots__ = ("kind", "chan", "disk", "lba", "n", "seq", "path", "io", "calls", "done_calls", "faults",
                 "exc", "checked", "job", "after_close", "cb", "strict", "seen", "__weakref__")

    def __init__(self, kind: str, chan: "Chan", lba: int = 0, n: int = 0, seq: int = 0, path: str = "") -> None:
        self.kind = kind  # "read", "write", "tur", "job-write", "job-read"
        self.chan = chan
        self.disk = chan.disk
        self.lba = lba
        self.n = n
        self.seq = seq
        self.path = path  # sync, async, many, thread..., for messages
        self.io: Any = None
        self.calls = 0
        self.done_calls = 0
        self.faults: Set[str] = set()
        self.exc: Optional[BaseException] = None
        self.checked = False
        self.job: Any = None
        self.after_close = False
        self.cb = False  # a done callback was attached
        self.strict = True
        #: For reads: per block, the stamps it might hold at submission and the log position then.
        self.seen: List[Tuple[Set[int], int]] = []

    def __repr__(self) -> str:
        return (f"<{self.path} {self.kind} disk {self.disk.idx} lba {self.lba}+{self.n} seq {self.seq} "
                f"on channel {self.chan.name}, faults {sorted(self.faults)}>")

    def verify(self, io: Any) -> None:
        self.calls += 1
        self.io = io
        if self.strict and io.error is not None:
            raise io.error

    def done(self, io: Any) -> None:
        self.done_calls += 1


class Chan:
    """A channel of the model."""

    def __init__(self, name: str, ch: Channel, disk: Disk, reactor: "Reac") -> None:
        self.name = name
        self.ch = ch
        self.disk = disk
        self.reactor = reactor
        self.closing = False
        self.closed = False
        self.gone = False
        self.payloads: List[weakref.ref] = []

    @property
    def usable(self) -> bool:
        return not self.closing and not self.gone


class Reac:
    def __init__(self, name: str, threaded: bool) -> None:
        self.name = name
        self.r = Reactor()
        if threaded:
            self.r.start()
        self.threaded = threaded
        self.closed = False
        self.accepted = 0  # IOs and asynchronous jobs handed to it


# -- counts across examples (printed at the end) ------------------------------------


TOTALS: collections.Counter = collections.Counter()


# -- the machine ---------------------------------------------------------------------


class EngineMachine(RuleBasedStateMachine):
    """See the module docstring.  ``EngineMachine.disks`` is set by the test."""

    disks: List[Disk] = []
    rss_first: Optional[int] = None

    def __init__(self) -> None:
        super().__init__()
        self.seq = 0
        self.recs: List[Rec] = []
        self.chans: List[Chan] = []
        self.reactors: List[Reac] = []
        self.names = 0
        self.faults: Set[str] = set()
        self.slow = False
        self.failures: List[str] = []
        TOTALS["examples"] += 1

    # -- helpers ---------------------------------------------------------------

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def live_reactors(self) -> List[Reac]:
        return [r for r in self.reactors if not r.closed]

    def usable(self) -> List[Chan]:
        return [c for c in self.chans if c.usable and not c.closed]

    def open_chans(self) -> List[Chan]:
        return [c for c in self.chans if not c.closed]

    def new_rec(self, kind: str, chan: Chan, lba: int = 0, n: int = 0, path: str = "",
                strict: bool = True) -> Rec:
        seq = self.next_seq() if kind in ("write", "job-write") else 0
        rec = Rec(kind, chan, lba, n, seq, path)
        rec.strict = strict
        rec.faults |= self.faults
        if MEDIUM in self.faults:
            rec.faults.add(MEDIUM_WHOLE)
        if chan.closing or chan.closed:
            rec.faults.add(CLOSED)
        if chan.gone:
            rec.faults.add(GONE)
        if kind in ("write", "job-write") and not chan.closed:
            # A write is a candidate from the moment it may reach the disk.
            for i in range(lba, lba + n):
                chan.disk.cand[i].add(seq)
                chan.disk.log[i].append(seq)
        if kind == "read":
            disk = chan.disk
            rec.seen = [(disk.cand[i] | disk.uncertain[i], len(disk.log[i]))
                        for i in range(lba, min(lba + n, NLBA))]
        self.recs.append(rec)
        TOTALS["commands" if not kind.startswith("job") else "jobs"] += 1
        return rec

    def make_cmd(self, rec: Rec) -> Any:
        if rec.kind == "write":
            payload = Payload(stamps(rec.disk.idx, rec.lba, rec.n, rec.seq))
            rec.chan.payloads.append(weakref.ref(payload))
            c = command.Write10(lba=rec.lba, transfer_length=rec.n, data=payload, verify_handler=rec.verify)
        elif rec.kind == "read":
            c = command.Read10(lba=rec.lba, transfer_length=rec.n, verify_handler=rec.verify)
        else:
            c = command.TestUnitReady(verify_handler=rec.verify)
        return c

    @staticmethod
    def accept(reac: "Reac", n: int) -> None:
        with COUNT_LOCK:
            reac.accepted += n

    def submit_async(self, rec: Rec, timeout: Optional[int] = None) -> None:
        """``execute(async_=True)``: the IO, or the exception raised at the call."""
        try:
            io = rec.chan.ch.execute(self.make_cmd(rec), async_=True, verify_handler=rec.verify, timeout=timeout)
        except BaseException as exc:
            rec.exc = exc
            return
        rec.io = io
        rec.cb = True
        io.add_done_callback(rec.done)
        self.accept(rec.chan.reactor, 1)

    def submit_sync(self, rec: Rec) -> None:
        """``execute()``: waits in the calling thread (SG_IO on sg nodes)."""
        try:
            rec.chan.ch.execute(self.make_cmd(rec), verify_handler=rec.verify)
        except BaseException as exc:  # KeyboardInterrupt included
            rec.exc = exc
            if isinstance(exc, KeyboardInterrupt):
                rec.faults.add(INTERRUPTED)
                self.uncertain(rec)
                raise
        finally:
            if rec.calls:
                self.accept(rec.chan.reactor, 1)

    def submit_many(self, recs: List[Rec], async_: bool) -> None:
        """``execute_many``: the IOs, from its return value or the failure's ``batch``."""
        chan = recs[0].chan
        cmds = [self.make_cmd(rec) for rec in recs]
        try:
            ios = chan.ch.execute_many(cmds, async_=async_)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            ios = getattr(exc, "batch", None)
            if ios is None:
                for rec in recs:
                    rec.exc = exc
                return
        self.accept(chan.reactor, len(ios))
        for rec, io in zip(recs, ios):
            rec.io = io
            rec.cb = True
            io.add_done_callback(rec.done)

    def uncertain(self, rec: Rec) -> None:
        """A write whose fate nobody will learn: a candidate for good."""
        if rec.kind == "write":
            for i in range(rec.lba, rec.lba + rec.n):
                rec.disk.uncertain[i].add(rec.seq)
        elif rec.kind == "job-write":
            for i in range(NLBA):
                rec.disk.uncertain[i].add(rec.seq)

    def fail(self, msg: str) -> None:
        raise AssertionError(msg)

    def wait_recs(self, recs: List[Rec], what: str, bound: float = BOUND) -> None:
        """Wait (bounded) until every IO and job of ``recs`` has returned."""
        deadline = time.monotonic() + bound
        for rec in recs:
            if rec.io is not None and rec.calls == 0 and not rec.io.returned:
                left = deadline - time.monotonic()
                ok = rec.io.channel.reactor.wait([rec.io], timeout=max(0.0, left))
                if not ok:
                    self.fail(f"hang: {rec!r} not returned within {bound} s ({what})")
            if rec.job is not None and not rec.job.returned:
                left = deadline - time.monotonic()
                try:
                    rec.job.wait(timeout=max(0.0, left))
                except TimeoutError:
                    self.fail(f"hang: job {rec!r} still running after {bound} s ({what})")
                except BaseException:
                    pass

    def pending(self, disk: Optional[Disk] = None) -> List[Rec]:
        return [r for r in self.recs if not r.checked and (disk is None or r.disk is disk)]

    def quiesce(self, disk: Optional[Disk] = None, what: str = "quiesce") -> None:
        self.wait_recs(self.pending(disk), what)
        self.settle()

    # -- checking finished records ---------------------------------------------

    def allowed(self, rec: Rec, exc: BaseException) -> bool:
        f = rec.faults
        if isinstance(exc, KeyboardInterrupt):
            return INTERRUPTED in f
        if isinstance(exc, DeviceGone):
            return GONE in f
        if isinstance(exc, ChannelClosed):
            return CLOSED in f
        if isinstance(exc, CommandTimeout):
            return DROP in f
        if isinstance(exc, MediumError):
            return MEDIUM in f and rec.kind in ("read", "job-read") and self.overlaps_bad(rec)
        if isinstance(exc, UnitAttention):
            return rec.disk.ua_possible or DROP in f or OPENING in f
        return False

    @staticmethod
    def overlaps_bad(rec: Rec) -> bool:
        if rec.kind == "job-read":
            return True
        return rec.lba < BAD_START + BAD_COUNT and BAD_START < rec.lba + rec.n

    def check_read_data(self, rec: Rec, data: bytes) -> None:
        disk = rec.disk
        for i in range(rec.n):
            lba = rec.lba + i
            # The read executed at some moment while it was pending: the block then held a
            # stamp that was possible at submission or arrived after it (the model may have
            # pruned those since, when a later quiet check read the disk).
            extra: Set[int] = set()
            if i < len(rec.seen):
                then, pos = rec.seen[i]
                extra = then | set(disk.log[lba][pos:])
            self.check_block(disk, lba, data[i * BLOCK:(i + 1) * BLOCK], f"read by {rec!r}", extra)

    def check_block(self, disk: Disk, lba: int, block: bytes, where: str,
                    extra: Set[int] = frozenset()) -> Optional[int]:  # type: ignore[assignment]
        d = decode(block)
        if d is None:
            self.fail(f"disk {disk.idx} LBA {lba} holds bytes nobody wrote ({where}): {block[:32].hex()}...")
        got_disk, got_lba, seq = d
        if got_disk != disk.idx:
            self.fail(f"disk {disk.idx} LBA {lba} holds a stamp meant for disk {got_disk} (LBA {got_lba}, "
                      f"seq {seq}) ({where})")
        if got_lba != lba:
            self.fail(f"disk {disk.idx} LBA {lba} holds the stamp of LBA {got_lba} (seq {seq}) ({where})")
        if seq not in disk.cand[lba] and seq not in disk.uncertain[lba] and seq not in extra:
            self.fail(f"disk {disk.idx} LBA {lba} holds seq {seq}, not one it may hold "
                      f"{sorted(disk.cand[lba] | disk.uncertain[lba] | extra)} ({where})")
        return seq

    def settle(self) -> None:
        """Check every finished record once: exactly once, allowed outcome, read data."""
        for rec in self.recs:
            if rec.checked:
                continue
            if rec.job is not None:
                self.settle_job(rec)
                continue
            io = rec.io
            if io is None:
                if rec.calls:
                    self.fail(f"{rec!r}: the verify handler ran but the call gave no IO")
                if rec.exc is None:
                    self.fail(f"{rec!r}: neither an IO nor an exception")
                if not self.allowed(rec, rec.exc) and not (INTERRUPTED in rec.faults):
                    self.fail(f"{rec!r} failed at the call with {type(rec.exc).__name__}: {rec.exc}")
                if not rec.after_close and isinstance(rec.exc, (ChannelClosed, DeviceGone, KeyboardInterrupt)):
                    self.uncertain(rec)
                self.finish(rec)
                continue
            if not io.returned:
                if rec.calls or rec.done_calls:
                    self.fail(f"{rec!r}: handlers ran ({rec.calls}, {rec.done_calls}) before it returned")
                continue
            if rec.calls != 1:
                self.fail(f"{rec!r} finished {rec.calls} times (verify handler calls)")
            if rec.cb and rec.done_calls != 1:
                self.fail(f"{rec!r}: done callbacks ran {rec.done_calls} times")
            err = io.error
            if err is not None and not self.allowed(rec, err):
                self.fail(f"{rec!r} failed with {type(err).__name__}: {err}")
            if err is None and MEDIUM_WHOLE in rec.faults and rec.faults <= {MEDIUM, MEDIUM_WHOLE} \
                    and rec.kind == "read" and self.overlaps_bad(rec):
                self.fail(f"{rec!r} read the bad range while medium errors were injected, and succeeded")
            if err is None and rec.kind == "read":
                self.check_read_data(rec, io.data)
            if err is not None and rec.kind == "write" and isinstance(err, (CommandTimeout, ChannelClosed,
                                                                             DeviceGone)):
                self.uncertain(rec)
            self.finish(rec)

    def settle_job(self, rec: Rec) -> None:
        job = rec.job
        if not job.returned:
            if rec.done_calls:
                self.fail(f"job {rec!r}: done callback ran before it returned")
            return
        if rec.done_calls != 1:
            self.fail(f"job {rec!r}: done callback ran {rec.done_calls} times")
        exc = job.exception
        if exc is not None and not self.allowed(rec, exc):
            self.fail(f"job {rec!r} ended with {type(exc).__name__}: {exc}")
        if exc is not None and rec.kind == "job-write":
            self.uncertain(rec)
        s = job.stats
        if s.errors and not rec.faults:
            self.fail(f"job {rec!r}: {s.errors} errors with no fault injected: {job.errors[:3]}")
        self.finish(rec)

    def finish(self, rec: Rec) -> None:
        rec.checked = True
        rec.io = None
        rec.job = None
        rec.exc = None
        TOTALS["finished"] += 1

    # -- set-up -----------------------------------------------------------------

    @initialize()
    def setup(self) -> None:
        for name, value in (("opts", 0), ("every_nth", 0), ("random", 0), ("ndelay", 0), ("delay", 0)):
            set_knob(name, value)
        gc.collect()
        self.fd_base = fd_count()
        self.reactors.append(Reac("r0", threaded=False))
        # A fresh stamp on every model block of both disks, written and read
        # back through the block device: the starting point of the model.
        for disk in self.disks:
            if not disk.present or disk.block_path() is None:
                disk.rescan()  # an earlier example ended without putting it back
                disk.present = True
            disk.ua_possible = False
            seq = self.next_seq()
            path = disk.block_path()
            assert path is not None
            fd = os.open(path, os.O_RDWR | os.O_DIRECT)
            try:
                buf = mmap.mmap(-1, NLBA * BLOCK)
                buf[:] = stamps(disk.idx, 0, NLBA, seq)
                assert os.pwritev(fd, [buf], 0) == NLBA * BLOCK
                buf.close()
            finally:
                os.close(fd)
            disk.cand = [{seq} for _ in range(NLBA)]
            disk.log = [[seq] for _ in range(NLBA)]
            disk.uncertain = [set() for _ in range(NLBA)]
        for disk in self.disks:
            self.open_channel_on(disk, self.reactors[0], max_fds=4)

    def open_channel_on(self, disk: Disk, reac: Reac, max_fds: int) -> Optional[Chan]:
        path = disk.sg_path()
        assert path is not None
        ch = Channel.from_path(path, reactor=reac.r, block_size=BLOCK, max_fds=max_fds)
        self.names += 1
        chan = Chan(f"c{self.names}/{path}/{reac.name}", ch, disk, reac)
        self.chans.append(chan)
        # A re-added disk reports power on (and the sd probe may have eaten it).
        for _ in range(5):
            rec = self.new_rec("tur", chan, path="sync")
            rec.faults.add(OPENING)
            self.submit_sync(rec)
            exc = rec.exc
            if isinstance(exc, UnitAttention) and disk.ua_possible:
                continue
            break
        # Jobs check their LBA range against the capacity: learn it here, where the READ
        # CAPACITY sgpy sends on its own behalf is counted as handed over (once per channel).
        before = reac.r.statistics()["submitted"]
        try:
            ch.num_blocks
        except SgError:
            pass
        reac.accepted += reac.r.statistics()["submitted"] - before
        return chan

    # -- rules: channels and reactors ----------------------------------------------

    @precondition(lambda self: len(self.open_chans()) < MAX_CHANNELS)
    @rule(disk=st.integers(0, 1), which=st.integers(0, 3), max_fds=st.sampled_from([1, 2, 4, 16]))
    def open_channel(self, disk: int, which: int, max_fds: int) -> None:
        d = self.disks[disk]
        reacs = self.live_reactors()
        if not d.present or not reacs:
            return
        self.open_channel_on(d, reacs[which % len(reacs)], max_fds)

    @precondition(lambda self: len(self.live_reactors()) < 3)
    @rule(threaded=st.booleans())
    def new_reactor(self, threaded: bool) -> None:
        self.reactors.append(Reac(f"r{len(self.reactors)}{'t' if threaded else ''}", threaded))

    # -- rules: submissions ------------------------------------------------------------

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), how=st.sampled_from(["sync", "async", "many", "many-sync"]),
          kind=st.sampled_from(["write", "write", "read", "tur"]), count=st.integers(1, 12))
    def submit(self, data: Any, how: str, kind: str, count: int) -> None:
        chans = self.usable()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        recs = []
        for _ in range(count if how.startswith("many") or how == "async" else 1):
            lba = data.draw(st.integers(0, NLBA - 1), label="lba")
            n = data.draw(st.integers(1, min(8, NLBA - lba)), label="blocks")
            recs.append(self.new_rec(kind, chan, lba, n, path=how, strict=data.draw(st.booleans(), label="strict")))
        if how == "sync":
            self.submit_sync(recs[0])
        elif how == "async":
            for rec in recs:
                self.submit_async(rec)
        else:
            self.submit_many(recs, async_=how == "many")
        if how != "async" and how != "many":
            self.wait_recs(recs, how)
        self.settle()

    @precondition(lambda self: self.usable())
    @rule(data=st.data())
    def collect(self, data: Any) -> None:
        """Wait for what is pending, one way or another."""
        how = data.draw(st.sampled_from(["reactor", "channel", "io", "poll"]))
        pend = [r for r in self.pending() if r.io is not None and not r.io.returned]
        if not pend:
            return
        if how == "reactor":
            r = pend[0].chan.reactor.r
            assert r.wait(timeout=BOUND), f"hang: reactor.wait() over {BOUND} s with {pend[:3]}"
        elif how == "channel":
            ch = pend[0].chan.ch
            ch.wait(timeout=BOUND)
        elif how == "io":
            try:
                pend[-1].io.wait(timeout=BOUND)
            except TimeoutError:
                self.fail(f"hang: {pend[-1]!r} after {BOUND} s")
            except Exception:
                pass
        else:
            for rec in pend:
                rec.io.poll()
        self.settle()

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), threads=st.integers(2, 4))
    def storm(self, data: Any, threads: int) -> None:
        """Several threads submit at once, on shared and separate channels."""
        chans = self.usable()
        plans = []
        for t in range(threads):
            ops = []
            for _ in range(data.draw(st.integers(1, 6), label="ops")):
                chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
                how = data.draw(st.sampled_from(["sync", "async", "many"]), label="how")
                kind = data.draw(st.sampled_from(["write", "read", "tur"]), label="kind")
                lba = data.draw(st.integers(0, NLBA - 1), label="lba")
                n = data.draw(st.integers(1, min(4, NLBA - lba)), label="blocks")
                ops.append((chan, how, kind, lba, n))
            plans.append(ops)
        errors: List[BaseException] = []
        lock = threading.Lock()

        def worker(ops: List[tuple]) -> None:
            try:
                for chan, how, kind, lba, n in ops:
                    with lock:
                        recs = [self.new_rec(kind, chan, lba, n, path=f"thread-{how}")
                                for _ in range(2 if how == "many" else 1)]
                    if how == "sync":
                        self.submit_sync(recs[0])
                    elif how == "async":
                        self.submit_async(recs[0])
                        if recs[0].io is not None:
                            try:
                                recs[0].io.wait(timeout=BOUND)
                            except TimeoutError:
                                raise AssertionError(f"hang: {recs[0]!r} in a thread")
                            except Exception:
                                pass
                    else:
                        self.submit_many(recs, async_=False)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        ts = [threading.Thread(target=worker, args=(ops,), daemon=True) for ops in plans]
        for t in ts:
            t.start()
        for t in ts:
            t.join(BOUND)
            assert not t.is_alive(), f"hang: a submitting thread still runs after {BOUND} s"
        if errors:
            raise errors[0]
        TOTALS["storms"] += 1
        self.settle()

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), write=st.booleans(), async_=st.booleans(), lba_mode=st.sampled_from(["sequential",
                                                                                                "random"]),
          count=st.integers(1, 60), depth=st.integers(1, 8), n=st.sampled_from([1, 2, 4]))
    def job(self, data: Any, write: bool, async_: bool, lba_mode: str, count: int, depth: int, n: int) -> None:
        chans = self.usable()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        rec = self.new_rec("job-write" if write else "job-read", chan, 0, NLBA, path="job-async" if async_
                           else "job-sync")
        if write:
            tag = tag_of(chan.disk.idx, rec.seq)
            template = command.Write10(lba=0, transfer_length=n, data=(bytes(16) + filler(tag)) * n)
            extra: Dict[str, Any] = {"stamp": tag}
        else:
            template = command.Read10(lba=0, transfer_length=n)
            extra = {}
        try:
            job = chan.ch.run(template, count=count, queue_depth=depth, lba=lba_mode, lba_range=(0, NLBA),
                              async_=async_, stop_on_error=data.draw(st.booleans(), label="stop_on_error"),
                              **extra)
        except BaseException as exc:
            rec.exc = exc
            self.settle()
            return
        rec.job = job
        job.add_done_callback(rec.done)
        if async_:
            self.accept(chan.reactor, 1)
        if data.draw(st.booleans(), label="wait now"):
            self.wait_recs([rec], "job")
        self.settle()

    # -- rules: closing ------------------------------------------------------------------

    @precondition(lambda self: self.open_chans())
    @rule(data=st.data(), racers=st.integers(0, 3), with_job=st.booleans(), inflight=st.integers(0, 12))
    def close_channel(self, data: Any, racers: int, with_job: bool, inflight: int) -> None:
        """close() while threads, a job and async IOs use the channel; then nothing more reaches the disk."""
        chans = self.open_chans()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        disk = chan.disk
        # Only this channel may talk to the disk during the check: collect the rest first.
        self.quiesce(disk, "before close")
        for rec in self.pending(disk):
            if rec.job is not None and not rec.job.returned:
                rec.job.cancel()
        self.wait_recs(self.pending(disk), "before close")
        recs: List[Rec] = []
        if chan.usable:
            for _ in range(inflight):
                lba = data.draw(st.integers(0, NLBA - 2), label="lba")
                rec = self.new_rec("write", chan, lba, 2, path="async")
                self.submit_async(rec)
                recs.append(rec)
        stop = threading.Event()
        closed_at = [0.0]
        late: List[Rec] = []
        lock = threading.Lock()

        def racer(k: int) -> None:
            i = 0
            while not stop.is_set() and i < 200:
                i += 1
                with lock:
                    rec = self.new_rec("write", chan, (k * 7 + i) % (NLBA - 1), 1,
                                       path="racer-sync" if k % 2 == 0 else "racer-async")
                    started = time.monotonic()
                    if closed_at[0] and started > closed_at[0]:
                        rec.after_close = True
                        late.append(rec)
                    else:
                        recs.append(rec)
                if k % 2 == 0:
                    self.submit_sync(rec)
                else:
                    self.submit_async(rec)
                if rec.exc is not None and closed_at[0]:
                    # Keep trying a few times after close() returned.
                    if sum(1 for r in late if r.chan is chan) > 6:
                        break
                time.sleep(0.001)

        job_thread = None
        job_rec = None
        if with_job and chan.usable:
            job_rec = self.new_rec("job-write", chan, 0, NLBA, path="job-thread")
            tag = tag_of(disk.idx, job_rec.seq)
            template = command.Write10(lba=0, transfer_length=1, data=bytes(16) + filler(tag))
            started = threading.Event()

            def run_job() -> None:
                try:
                    started.set()
                    chan.ch.run(template, seconds=10, queue_depth=4, lba="random", lba_range=(0, NLBA), stamp=tag)
                except BaseException as exc:
                    job_rec.exc = exc

            job_thread = threading.Thread(target=run_job, daemon=True)
            job_thread.start()
            started.wait(5)
            time.sleep(0.05)
        ts = [threading.Thread(target=racer, args=(k,), daemon=True) for k in range(racers)]
        for t in ts:
            t.start()
        time.sleep(data.draw(st.sampled_from([0.0, 0.005, 0.02]), label="before close"))
        with lock:
            chan.closing = True
            for rec in self.pending():
                if rec.chan is chan:
                    rec.faults.add(CLOSED)
        t0 = time.monotonic()
        chan.ch.close()
        assert time.monotonic() - t0 < BOUND, "close() took longer than the bound"
        after = disk.iorequests() if disk.present else None
        with lock:
            closed_at[0] = time.monotonic()
            chan.closed = True
        time.sleep(0.05)
        stop.set()
        for t in ts:
            t.join(BOUND)
            assert not t.is_alive(), "hang: a racer still runs after close()"
        job_exc = None
        if job_thread is not None and job_rec is not None:
            job_thread.join(BOUND)
            if job_thread.is_alive():
                self.fail("hang: a synchronous job went on running after close() returned")
            job_exc = job_rec.exc
            job_rec.faults.add(CLOSED)
            self.uncertain(job_rec)
            self.finish(job_rec)
        if after is not None and disk.present:
            now = disk.iorequests()
            if now != after:
                self.fail(f"{now - after} command(s) reached disk {disk.idx} after close() of {chan.name} "
                          f"returned (iorequest_cnt {after} -> {now}; racers {racers}, job {with_job})")
        for rec in late:
            if rec.exc is None or not isinstance(rec.exc, (ChannelClosed, DeviceGone)):
                self.fail(f"{rec!r} was called after close() returned and was not refused: "
                          f"{rec.exc!r}, io {rec.io!r}")
            # It never reached the device: it may not be found there.
            for i in range(rec.lba, rec.lba + rec.n):
                disk.cand[i].discard(rec.seq)
            rec.faults.add(CLOSED)
        if job_rec is not None and not isinstance(job_exc, (ChannelClosed, DeviceGone)):
            self.fail(f"a synchronous job running at close() ended with {job_exc!r}, not ChannelClosed")
        self.wait_recs([r for r in self.pending() if r.chan is chan], "after close")
        for rec in self.pending():
            if rec.chan is chan and rec.kind == "write" and rec.io is not None and isinstance(rec.io.error,
                                                                                               ChannelClosed):
                self.uncertain(rec)
        TOTALS["closes"] += 1
        self.settle()
        self.check_retention(chan)

    def check_retention(self, chan: Chan) -> None:
        """After close(), nothing of the channel's IOs' data is kept alive by the engine."""
        if any(not r.checked for r in self.recs if r.chan is chan):
            return
        for rec in self.recs:
            if rec.chan is chan:
                rec.io = None
        gc.collect()
        alive = [r for r in chan.payloads if r() is not None]
        chan.payloads = []
        if alive:
            self.fail(f"{len(alive)} write payload(s) of closed channel {chan.name} are still alive "
                      "(the engine keeps data after close())")

    @precondition(lambda self: self.live_reactors())
    @rule(which=st.integers(0, 2), busy=st.integers(0, 8))
    def close_reactor(self, which: int, busy: int) -> None:
        reacs = self.live_reactors()
        reac = reacs[which % len(reacs)]
        chans = [c for c in self.open_chans() if c.reactor is reac]
        for chan in chans[:1]:
            if chan.usable:
                for i in range(busy):
                    rec = self.new_rec("write", chan, (i * 5) % (NLBA - 1), 1, path="async")
                    self.submit_async(rec)
        for chan in chans:
            chan.closing = True
            for rec in self.pending():
                if rec.chan is chan:
                    rec.faults.add(CLOSED)
        t0 = time.monotonic()
        reac.r.close()
        assert time.monotonic() - t0 < BOUND
        reac.closed = True
        for chan in chans:
            chan.closed = True
            if not chan.ch.closed:
                self.fail(f"reactor.close() left {chan.name} open")
        for rec in self.pending():
            if rec.chan.reactor is reac and rec.io is not None and not rec.io.returned:
                self.fail(f"reactor.close() returned with {rec!r} still pending")
        for rec in self.pending():
            if rec.chan.reactor is reac and rec.kind == "write":
                self.uncertain(rec) if rec.io is not None and rec.io.error is not None else None
        TOTALS["reactor closes"] += 1
        self.settle()
        for chan in chans:
            self.check_retention(chan)
        # A closed channel refuses work at once.
        for chan in chans:
            rec = self.new_rec("write", chan, 0, 1, path="after-close")
            rec.after_close = True
            self.submit_async(rec)
            if not isinstance(rec.exc, ChannelClosed):
                self.fail(f"a closed channel took a command: {rec.exc!r}")
            for i in range(rec.n):
                chan.disk.cand[rec.lba + i].discard(rec.seq)
            rec.faults.add(CLOSED)
            self.settle()

    # -- rules: faults ---------------------------------------------------------------------

    @rule(slow=st.booleans(), ndelay=st.sampled_from([2_000_000, 10_000_000, 40_000_000]))
    def slow_device(self, slow: bool, ndelay: int) -> None:
        """Late and out-of-order completions (scsi_debug ndelay, random=1), or back to at once."""
        self.quiesce(None, "before changing the delay")
        if slow:
            set_knob("delay", 0)
            set_knob("ndelay", ndelay)
            set_knob("random", 1)
        else:
            set_knob("random", 0)
            set_knob("ndelay", 0)
            set_knob("delay", 0)
        self.slow = slow

    @rule(on=st.booleans())
    def medium_errors(self, on: bool) -> None:
        """Reads of the bad range fail with MEDIUM ERROR while opts bit 2 is set."""
        if on:
            self.faults.add(MEDIUM)
            for rec in self.pending():
                rec.faults.add(MEDIUM)
            set_knob("opts", 2)
        else:
            set_knob("opts", 0)
            self.faults.discard(MEDIUM)
            for rec in self.pending():
                rec.faults.discard(MEDIUM_WHOLE)

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), nth=st.integers(1, 4), count=st.integers(1, 6))
    def dropped_commands(self, data: Any, nth: int, count: int) -> None:
        """Commands the device never answers: CommandTimeout, and the channel goes on."""
        chans = self.usable()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        self.quiesce(None, "before dropping")
        opts = 2 if MEDIUM in self.faults else 0
        recs = []
        for i in range(count):
            kind = data.draw(st.sampled_from(["read", "write"]), label="kind")
            lba = data.draw(st.integers(0, NLBA - 2), label="lba")
            rec = self.new_rec(kind, chan, lba, 1, path="async")
            rec.faults.add(DROP)
            recs.append(rec)
        set_knob("every_nth", nth)
        set_knob("opts", opts | 4)
        try:
            for rec in recs:
                self.submit_async(rec, timeout=DROP_TIMEOUT_MS)
        finally:
            # Once the commands are written, nothing else may be dropped.
            time.sleep(0.05)
            set_knob("opts", opts)
            set_knob("every_nth", 0)
        chan.disk.ua_possible = True  # the error handler's abort may reset the device
        self.wait_recs(recs, "dropped commands")
        TOTALS["drops"] += 1
        self.settle()

    # -- rules: hot unplug ------------------------------------------------------------------

    @precondition(lambda self: any(d.present for d in self.disks))
    @rule(disk=st.integers(0, 1), inflight=st.integers(0, 24), from_thread=st.booleans())
    def unplug(self, disk: int, inflight: int, from_thread: bool) -> None:
        """Delete a disk with commands in flight: each fails once with DeviceGone or completes."""
        d = self.disks[disk]
        if not d.present:
            return
        chans = [c for c in self.usable() if c.disk is d]
        recs = []
        for i in range(inflight):
            if not chans:
                break
            chan = chans[i % len(chans)]
            rec = self.new_rec("write" if i % 2 else "read", chan, (i * 3) % (NLBA - 2), 2, path="async")
            self.submit_async(rec)
            recs.append(rec)
        for rec in self.pending(d):
            rec.faults.add(GONE)
        for chan in chans:
            chan.gone = True
        d.present = False
        if from_thread:
            t = threading.Thread(target=d.delete, daemon=True)
            t.start()
            for rec in recs:
                if rec.io is not None:
                    if not rec.io.channel.reactor.wait([rec.io], timeout=BOUND):
                        self.fail(f"hang: {rec!r} after the unplug")
            t.join(BOUND)
            assert not t.is_alive(), "deleting the device did not return"
        else:
            d.delete()
        self.wait_recs(self.pending(d), "after unplug")
        for rec in self.pending(d):
            if rec.kind in ("write", "job-write") and (rec.exc is not None or (rec.io is not None and rec.io.error)):
                self.uncertain(rec)
        TOTALS["unplugs"] += 1
        self.settle()
        # The channels of the disk refuse work at once.
        for chan in chans:
            rec = self.new_rec("tur", chan, path="async")
            rec.faults.add(GONE)
            self.submit_async(rec)
            if not isinstance(rec.exc, DeviceGone) and rec.io is not None:
                self.wait_recs([rec], "after unplug")
        self.settle()

    @precondition(lambda self: any(not d.present for d in self.disks))
    @rule(disk=st.integers(0, 1), close_first=st.booleans())
    def replug(self, disk: int, close_first: bool) -> None:
        d = self.disks[disk]
        if d.present:
            return
        if close_first:
            for chan in self.open_chans():
                if chan.disk is d:
                    chan.closing = True
                    chan.ch.close()
                    chan.closed = True
        d.rescan()
        d.present = True
        d.ua_possible = True
        TOTALS["replugs"] += 1

    # -- rules: Ctrl-C ---------------------------------------------------------------------------

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), delay=st.sampled_from([0.0, 0.001, 0.005, 0.02]),
          how=st.sampled_from(["reactor", "channel", "io", "many", "sync", "job"]), count=st.integers(1, 16))
    def ctrl_c(self, data: Any, delay: float, how: str, count: int) -> None:
        """SIGINT to the main thread while it waits: nothing is lost, a later wait completes the same IOs."""
        chans = self.usable()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        recs = []
        if how == "many":
            recs = [self.new_rec("read", chan, (i * 3) % (NLBA - 2), 2, path="many") for i in range(count)]
        elif how == "sync":
            recs = [self.new_rec("write", chan, 5, 2, path="sync")]
        elif how == "job":
            recs = [self.new_rec("job-read", chan, 0, NLBA, path="job-sync")]
        else:
            for i in range(count):
                rec = self.new_rec("write" if i % 2 else "read", chan, (i * 5) % (NLBA - 2), 2, path="async")
                self.submit_async(rec)
                recs.append(rec)
        main = threading.main_thread().ident
        lock = threading.Lock()
        armed = [True]
        fired = [False]

        def fire() -> None:
            with lock:
                if armed[0]:
                    fired[0] = True
                    signal.pthread_kill(main, signal.SIGINT)

        timer = threading.Timer(delay, fire)
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
        interrupted = False
        many_done = False
        try:
            try:
                timer.start()
                if how == "reactor":
                    chan.reactor.r.wait(timeout=BOUND)
                elif how == "channel":
                    chan.ch.wait(timeout=BOUND)
                elif how == "io":
                    for rec in recs:
                        if rec.io is not None:
                            try:
                                rec.io.wait(timeout=BOUND)
                            except (TimeoutError, KeyboardInterrupt):
                                raise
                            except Exception:
                                pass
                elif how == "many":
                    self.submit_many(recs, async_=False)
                    many_done = True
                elif how == "sync":
                    self.submit_sync(recs[0])
                else:
                    try:
                        recs[0].job = chan.ch.run(command.Read10(lba=0, transfer_length=2), count=200,
                                                  queue_depth=4, lba="random", lba_range=(0, NLBA))
                        recs[0].done_calls = 1
                    except (KeyboardInterrupt, TimeoutError):
                        raise
                    except Exception as exc:
                        recs[0].exc = exc
            finally:
                with lock:
                    armed[0] = False
                timer.cancel()
                if fired[0]:
                    time.sleep(0.05)  # a signal on its way is taken here
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGINT, old)
        timer.join()
        if interrupted:
            TOTALS["interrupts"] += 1
            if how == "job":
                recs[0].faults.add(INTERRUPTED)
                recs[0].exc = recs[0].exc or KeyboardInterrupt()
        if how == "sync" and interrupted and recs[0].io is None and recs[0].exc is None:
            # The interruption came before the call began (in this test's own code): nothing was sent.
            recs[0].exc = KeyboardInterrupt()
            recs[0].faults.add(INTERRUPTED)
        if how == "job" and recs[0].job is None:
            if recs[0].exc is None:
                recs[0].exc = KeyboardInterrupt()
                recs[0].faults.add(INTERRUPTED)
        reac = chan.reactor
        if how == "many" and not many_done:
            # execute_many was interrupted before it returned its IOs: the
            # verify handlers say which ones it took; a later wait collects
            # them all (an IO it lost keeps the reactor's count up: a hang).
            if not reac.r.wait(timeout=20):
                self.fail(f"after Ctrl-C in execute_many the reactor still has "
                          f"{reac.r.statistics()['outstanding']} IO(s) outstanding after 20 s: lost")
            for rec in recs:
                if rec.calls:
                    self.accept(reac, 1)
                else:
                    rec.exc = KeyboardInterrupt()
                    rec.faults.add(INTERRUPTED)
        # A later wait completes the same IOs, with the device's own outcome.
        self.wait_recs(recs, "after Ctrl-C", bound=20)
        self.settle()

    # -- rules: bad arguments -------------------------------------------------------------------

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), bad=st.sampled_from([
        "long-cdb", "short-cdb", "timeout-neg", "timeout-big", "timeout-float", "none", "short-data",
        "huge", "shrunk", "resize-inflight", "run-raw", "run-inf", "run-timeout", "open-timeout",
        "open-max-fds", "open-policy",
    ]), async_=st.booleans())
    def bad_argument(self, data: Any, bad: str, async_: bool) -> None:
        """Bad input fails at the call, before anything reaches the device; the channel goes on."""
        chans = self.usable()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        disk = chan.disk
        ch = chan.ch
        self.quiesce(disk, "before a bad argument")
        # A write first, so that a slot that is not refilled holds a WRITE to replay.
        prev = self.new_rec("write", chan, 9, 1, path="async" if async_ else "sync")
        if async_:
            self.submit_async(prev)
            self.wait_recs([prev], "write before a bad argument")
        else:
            self.submit_sync(prev)
        self.settle()
        before = disk.iorequests()
        fd_before = fd_count()
        raised: Optional[BaseException] = None
        io = None
        if bad == "resize-inflight":
            # Not an argument error: a buffer in use must not change size.
            rec = self.new_rec("write", chan, 11, 2, path="async")
            payload = Payload(stamps(disk.idx, 11, 2, rec.seq))
            try:
                rec.io = ch.execute(command.Write10(lba=11, transfer_length=2, data=payload), async_=True,
                                    verify_handler=rec.verify)
                rec.cb = True
                rec.io.add_done_callback(rec.done)
                self.accept(chan.reactor, 1)
            except BaseException as exc:
                rec.exc = exc
            if rec.io is not None and not rec.io.returned and not chan.reactor.threaded:
                try:
                    del payload[BLOCK:]
                    self.fail(f"the data of {rec!r} shrank while the command was in flight")
                except BufferError:
                    pass
            self.wait_recs([rec], "resize")
            self.settle()
            return
        try:
            if bad in ("long-cdb", "short-cdb"):
                size = data.draw(st.integers(33, 260) if bad == "long-cdb" else st.integers(1, 5), label="cdb")
                cdb = bytes([0x00]) + bytes(size - 1)  # TEST UNIT READY's opcode
                io = ch.execute(command.RawCommand(cdb=cdb, direction=Direction.NONE), async_=async_)
            elif bad.startswith("timeout"):
                t = {"timeout-neg": -1, "timeout-big": 1 << 32, "timeout-float": 1.5}[bad]
                how = data.draw(st.sampled_from(["execute", "many", "cmd"]), label="how")
                if how == "execute":
                    io = ch.execute(command.Read10(lba=0, transfer_length=1), async_=async_, timeout=t)
                elif how == "many":
                    io = ch.execute_many([command.Read10(lba=0, transfer_length=1)], async_=async_, timeout=t)
                else:
                    io = ch.cmd.Read10(lba=0, transfer_length=1, async_=async_, timeout=t)
            elif bad == "none":
                io = ch.execute(None, async_=async_)
            elif bad == "short-data":
                io = ch.execute(command.Write10(lba=0, transfer_length=2, data=bytes(BLOCK)), async_=async_)
            elif bad == "huge":
                io = ch.execute(command.Read16(lba=0, transfer_length=0x7FFFFF), async_=async_)
            elif bad == "shrunk":
                buf = bytearray(stamps(disk.idx, 13, 2, 0))
                c = command.Write10(lba=13, transfer_length=2, data=buf)
                del buf[BLOCK // 2:]
                io = ch.execute(c, async_=async_)
            elif bad == "run-raw":
                # A raw TEST UNIT READY as a job's template: a job, or a clear refusal.
                try:
                    ch.run(command.RawCommand(cdb=bytes(6)), count=1)
                except (ValueError, TypeError, SgError):
                    pass
                TOTALS["bad arguments"] += 1
                self.settle()
                return
            elif bad == "run-inf":
                io = ch.run(command.TestUnitReady(), seconds=float("inf"), async_=async_)
            elif bad == "run-timeout":
                io = ch.run(command.TestUnitReady(), count=1, timeout=-1, async_=async_)
            elif bad == "open-timeout":
                io = Channel.from_path(ch.path, reactor=chan.reactor.r, timeout=-1)
            elif bad == "open-max-fds":
                io = Channel.from_path(ch.path, reactor=chan.reactor.r, max_fds=1.5)
            elif bad == "open-policy":
                io = Channel.from_path(ch.path, reactor=chan.reactor.r, policy="readonly")
        except BaseException as exc:
            raised = exc
        TOTALS["bad arguments"] += 1
        if raised is None:
            # Nothing raised: clean up what was made before failing.
            if isinstance(io, Channel):
                io.close()
            elif io is not None:
                try:
                    (io[0] if isinstance(io, list) else io).wait(timeout=10)
                except Exception:
                    pass
            self.fail(f"bad argument {bad!r} (async_={async_}) was accepted: {io!r}")
        if not isinstance(raised, (ValueError, TypeError, SgError)) or isinstance(raised, (ChannelClosed,
                                                                                           DeviceGone)):
            self.fail(f"bad argument {bad!r} (async_={async_}) raised {type(raised).__name__}: {raised}")
        if disk.present and disk.iorequests() != before:
            self.fail(f"bad argument {bad!r} (async_={async_}): {disk.iorequests() - before} command(s) reached "
                      f"the device before it was refused")
        if fd_count() != fd_before:
            self.fail(f"bad argument {bad!r}: fds {fd_before} -> {fd_count()}")
        # The channel goes on: a read of what was just written.
        rec = self.new_rec("read", chan, 9, 1, path="async" if async_ else "sync")
        if async_:
            self.submit_async(rec)
            self.wait_recs([rec], "after a bad argument")
        else:
            self.submit_sync(rec)
        self.settle()
        if rec.exc is not None and not self.allowed(rec, rec.exc):
            self.fail(f"after bad argument {bad!r} the channel fails: {rec.exc!r}")

    # -- rules: streaming (memory) ----------------------------------------------------------------

    @precondition(lambda self: self.usable())
    @rule(data=st.data(), count=st.integers(4, 24))
    def stream(self, data: Any, count: int) -> None:
        """Fresh 32 KiB writes, each its own command: nothing of them may stay alive after close."""
        chans = self.usable()
        chan = chans[data.draw(st.integers(0, len(chans) - 1), label="channel")]
        recs = [self.new_rec("write", chan, 0, NLBA, path="async") for _ in range(count)]
        for rec in recs:
            self.submit_async(rec)
        self.wait_recs(recs, "stream")
        self.settle()

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def check_records(self) -> None:
        self.settle()
        TOTALS["steps"] += 1

    @invariant()
    def check_statistics(self) -> None:
        for reac in self.reactors:
            if reac.closed:
                continue
            s = reac.r.statistics()
            pending = sum(1 for r in self.recs if not r.checked and r.chan.reactor is reac and (
                (r.io is not None and not r.io.returned) or (r.job is not None and not r.job.returned
                                                              and r.path == "job-async")))
            if s["outstanding"] != pending:
                self.fail(f"{reac.name}: outstanding {s['outstanding']}, the model has {pending} pending: {s}")
            total = s["completed"] + s["failed"] + s["outstanding"]
            if total != reac.accepted:
                self.fail(f"{reac.name}: completed + failed + outstanding = {total}, but {reac.accepted} IOs "
                          f"and jobs were handed to it: {s}")
            if s["submitted"] > reac.accepted or s["completed"] > s["submitted"]:
                self.fail(f"{reac.name}: submitted {s['submitted']} not between completed {s['completed']} "
                          f"and handed over {reac.accepted}")
            if s["in_flight"] + s["queued"] > s["outstanding"]:
                self.fail(f"{reac.name}: in flight + queued > outstanding: {s}")

    @invariant()
    def check_disks(self) -> None:
        quiet = not any(r.kind in ("write", "job-write") for r in self.pending())
        for disk in self.disks:
            if not disk.present:
                continue
            blocks = disk.read_all(exclude_bad=MEDIUM in self.faults)
            for lba, block in blocks.items():
                seq = self.check_block(disk, lba, block, "read through the block device")
                if quiet and seq is not None:
                    # Nothing in flight: the block holds this and nothing else will
                    # appear but the writes whose fate is unknown.
                    disk.cand[lba] = {seq}

    @invariant()
    def check_fds(self) -> None:
        if self.open_chans() or any(r.job is not None and not r.job.returned for r in self.recs):
            return
        want = self.fd_base + 3 * len(self.live_reactors())
        if fd_count() != want:
            self.fail(f"{fd_count()} fds open with no channel open; expected {want} "
                      f"(baseline {self.fd_base} + 3 per open reactor): {sorted(os.listdir('/proc/self/fd'))}")

    # -- the end of an example ---------------------------------------------------------------------

    def teardown(self) -> None:
        """Close everything, then check nothing is left; the disks and knobs are put back whatever happens."""
        errors: List[BaseException] = []

        def attempt(fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # the first failure is raised at the end
                errors.append(exc)

        attempt(set_knob, "opts", 0)
        attempt(set_knob, "every_nth", 0)
        self.faults.discard(MEDIUM)
        attempt(self.wait_recs, self.pending(), "teardown")
        for chan in self.open_chans():
            chan.closing = True
            attempt(chan.ch.close)
            chan.closed = True
        for reac in self.live_reactors():
            attempt(reac.r.close)
            reac.closed = True
        for name, value in (("random", 0), ("ndelay", 0), ("delay", 0)):
            attempt(set_knob, name, value)
        for disk in self.disks:
            if not disk.present:
                attempt(disk.rescan)
                disk.present = True
        if not errors:
            attempt(self.final_checks)
        self.recs = []
        self.chans = []
        if errors:
            raise errors[0]

    def final_checks(self) -> None:
        self.settle()
        left = self.pending()
        if left:
            self.fail(f"{len(left)} record(s) never finished: {left[:5]}")
        for chan in self.chans:
            self.check_retention(chan)
        gc.collect()
        if fd_count() != self.fd_base:
            self.fail(f"{fd_count()} fds after the example, {self.fd_base} before: "
                      f"{sorted(os.listdir('/proc/self/fd'))}")
        self.check_disks()
        now = rss()
        first = EngineMachine.rss_first
        if first is None:
            EngineMachine.rss_first = now
        elif now > first + RSS_MARGIN:
            self.fail(f"RSS {now >> 20} MiB after this example, {first >> 20} MiB after the first")


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=CI_STEPS, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True,
                    verbosity=Verbosity.debug if os.environ.get("SGPY_SM_TRACE") else Verbosity.normal,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])




def _soak() -> tuple:
    """``SGPY_SOAK``: (examples, seconds); (CI_EXAMPLES, 0) when unset."""
    value = os.environ.get("SGPY_SOAK", "").strip()
    if not value:
        return CI_EXAMPLES, 0.0
    if value.endswith("s"):
        return 0, float(value[:-1])
    return int(value), 0.0


@pytest.mark.scsi_debug(**PARAMS)
def test_engine_invariants_hold_under_random_interleavings(scsi_debug, request):
    """The stateful fuzzer (see the module docstring for the invariants)."""
    devices = scsi_debug.devices
    assert len(devices) == 2, devices
    hosts = []
    for path in devices:
        name = os.path.basename(path)
        hctl = os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{name}/device"))
        hosts.append(int(hctl.split(":")[0]))
    assert hosts[0] != hosts[1], "each disk must be a host of its own (separate stores)"
    EngineMachine.disks = [Disk(i, h) for i, h in enumerate(hosts)]
    EngineMachine.rss_first = None
    TOTALS.clear()
    examples, seconds = _soak()
    start = time.monotonic()
    try:
        if seconds:
            while time.monotonic() - start < seconds:
                run_state_machine_as_test(EngineMachine, settings=_settings(10))
        else:
            run_state_machine_as_test(EngineMachine, settings=_settings(examples))
    finally:
        elapsed = time.monotonic() - start
        summary = ", ".join(f"{k} {v}" for k, v in sorted(TOTALS.items()))
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        line = f"state machine: {elapsed:.0f} s: {summary}"
        if reporter is not None:
            reporter.write_line(line)
        else:  # pragma: no cover
            print(line)
        for disk in EngineMachine.disks:
            if not disk.present:
                disk.rescan()
        if set(guest.sg_devices()) != set(devices):
            # A disk re-added while an fd was open gets a new sg number: reload to renumber.
            params = guest.current_params()
            guest.unload()
            guest.load(params)
