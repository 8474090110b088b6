"""Jobs: many commands from one template, at full speed.

A :class:`Job` is sgpy's load generator, what fio's jobs or sg3_utils'
``sg_turs --num`` are to their tools: one command (``Read10``,
``Write16``, ``TestUnitReady``...) sent ``count`` times, or for
``seconds``, with ``queue_depth`` commands in flight and the LOGICAL BLOCK
ADDRESS varied per command (sequential, random, or from a list).  Its steady
state never returns to Python: the extension (``sgpy_job_*`` in
``sgpy/_sg.c``) reads each completion, checks it, records its latency and
sends the slot's next command in the same C loop.  Python sees the job once
per batch of completions, and every completion that is not clean: those are
classified exactly as :meth:`Channel.execute` would (sense key, ASC/ASCQ,
host and driver status), so a failing LBA raises the same precise exception.

Start one with :meth:`sgpy.channel.Channel.run`::

    with Channel.from_path("/dev/sg1") as ch:
        stats = ch.run(command.Read10(lba=0, transfer_length=8), seconds=10,
                       queue_depth=16, lba="random").stats
        print(stats)   # 123,456 commands in 10.0 s: 12,345 IOPS, 50.6 MB/s, ...

``async_=True`` returns the running job instead: it is driven by the
channel's reactor (its own epoll instance is one of the reactor's sources),
so several jobs, on several devices, and ordinary IOs run side by side;
``job.wait()``, ``reactor.wait([job, ...])`` and ``add_done_callback`` work
as for IOs.

Mechanics (drivers/scsi/sg.c): a job opens its own fds on the device (so its
completions never mix with the channel's), at most ``max_fds`` of them, and
spreads the slots over them one per fd first, so that every command of a
queue depth up to ``max_fds`` uses its fd's reserve buffer (which is sized
to the transfer) instead of pages the kernel allocates per command.  At
queue depth 1 a synchronous job uses the ``SG_IO`` ioctl: one system call
per command.  Handler chains and verify handlers are not run per command
(that is what an IO is for); a job's answer is its :class:`JobStats`.

``stamp=TAG`` makes a write job start every block with its LBA and TAG;
``verify=TAG`` makes a read job check every block for exactly that
(:class:`~sgpy.errors.DataMismatch` otherwise).  ``write=`` beside a read
template makes a mixed job (fio's ``randrw``): ``read_percent`` of its
commands read, the rest write, chosen in C per command, counted apart in
``stats.read`` and ``stats.write``.  ``rate_iops=N`` holds the job to N
commands per second (a token bucket in the C loop).  On channels that are not sg
nodes (iSCSI, block devices, bsg nodes) the same call runs through the
channel's own IOs (``job.engine == "io"``) with the same LBA plan,
statistics and errors, at the speed of IOs.
"""

from __future__ import annotations

import array
import errno as _errno
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import attr

from sgpy import _binding, _check, _interrupt
from sgpy import safety as _safety
from sgpy.constants import Direction
from sgpy.constants import SenseKey
from sgpy.errors import (
    ChannelClosed,
    DataMismatch,
    InheritedChannel,
    DeviceGone,
    EncodeError,
    KernelMemoryError,
    SgError,
    TaskFailed,
)
from sgpy.cdb.base import Command
from sgpy.handler import might_fail
from sgpy.status import classify

if TYPE_CHECKING:  # pragma: no cover
    from sgpy.channel import Channel

__all__ = ["Job", "JobStats", "Latency", "JobError", "bucket_bounds", "hist_index", "make_job",
           "stamp_blocks", "find_mismatch", "mix_seed", "mix_is_write", "RATE_IOPS_MAX"]

#: Commands a job handles per return to Python (a reactor round, or a slice of a
#: synchronous run); large enough that Python's share per command is negligible.
_BUDGET = 4096
#: A reactor-driven job gives the thread back after this long (ns), so other
#: jobs, IOs and an event loop sharing the thread get their turn.
_TURN_NS = 5_000_000
#: A synchronous job returns to Python at least this often (ms), so signals
#: such as Ctrl-C are seen while the device is slow.
_SLICE_MS = 100
_GONE = frozenset({_errno.ENODEV, _errno.ENXIO, _errno.EIO, _errno.EBADF})
#: Fields giving how many blocks a command covers, when it moves no data
#: (VERIFY without BYTCHK, WRITE SAME's NUMBER OF LOGICAL BLOCKS...).
_LENGTH_FIELDS = ("transfer_length", "verification_length", "number_of_logical_blocks")

LbaSpec = Union[None, str, Sequence[int]]


class JobError(SgError, ValueError):
    """A job that cannot be set up as asked (its template, range, depth or count)."""


#: Latency buckets per power of two: 2**_SUB_BITS (SGPY_HIST_SUB_BITS in sgpy/_sg.c).
_SUB_BITS = 6
_SUB = 1 << _SUB_BITS


def bucket_bounds(index: int) -> Tuple[int, int]:
    """``[low, high)`` in nanoseconds of latency histogram bucket ``index``.

    Below 64 ns each nanosecond has a bucket; above, every power of two is
    cut into 64 equal buckets, so a bucket is at most 1/64 of its value wide,
    fio's resolution (the layout of ``sgpy_hist_index`` in sgpy/_sg.c).
    """
    if index < _SUB:
        return index, index + 1
    msb = (index - _SUB) // _SUB + _SUB_BITS
    sub = (index - _SUB) % _SUB
    shift = msb - _SUB_BITS
    return (_SUB + sub) << shift, (_SUB + 1 + sub) << shift


@attr.frozen
class Latency:
    """Completion latencies of a job's commands (submission to completion read back).

    ``count``, ``min_ns``, ``mean_ns``, ``max_ns``, and ``histogram``: the
    non-empty buckets as ``(low_ns, high_ns, count)``.  :meth:`percentile`
    reads the histogram, so it is exact to within 1/64 of the value.
    """

    count: int
    min_ns: int
    mean_ns: float
    max_ns: int
    histogram: Tuple[Tuple[int, int, int], ...]

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0 < q <= 100) in nanoseconds (a bucket's midpoint)."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile {q} is not in (0, 100]")
        if not self.count:
            return 0.0
        want = q / 100.0 * self.count
        seen = 0
        for low, high, n in self.histogram:
            seen += n
            if seen >= want:
                mid = (low + high - 1) / 2.0
                return float(min(max(mid, self.min_ns), self.max_ns))
        return float(self.max_ns)

    def __str__(self) -> str:
        if not self.count:
            return "no latencies"
        us = 1000.0
        return (f"latency min {self.min_ns / us:.1f} us, mean {self.mean_ns / us:.1f} us, "
                f"p50 {self.percentile(50) / us:.1f} us, p99 {self.percentile(99) / us:.1f} us, "
                f"max {self.max_ns / us:.1f} us")


@attr.frozen
class JobStats:
    """What a job did: ``commands`` that succeeded (``recovered`` among them:
    RECOVERED ERROR sense, which counts as success), ``errors``,
    ``short_transfers`` (succeeded with a residual count), ``submitted``,
    ``seconds`` of wall time, ``bytes`` moved, and ``latency``
    (:class:`Latency`, or None when the job ran with ``latency=False``).
    A mixed job (``write=``) also has ``read`` and ``write``: the same
    counters, :class:`JobStats` themselves, for its reads and its writes
    apart (fio reports them apart too); None for any other job."""

    commands: int
    errors: int
    recovered: int
    short_transfers: int
    submitted: int
    seconds: float
    bytes: int
    latency: Optional[Latency]
    read: Optional["JobStats"] = None
    write: Optional["JobStats"] = None

    @property
    def iops(self) -> float:
        """Successful commands per second."""
        return self.commands / self.seconds if self.seconds > 0 else 0.0

    @property
    def bandwidth(self) -> float:
        """Bytes moved per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = (f"{self.commands:,} commands in {self.seconds:.2f} s: {self.iops:,.0f} IOPS, "
                f"{self.bandwidth / 1e6:,.1f} MB/s, {self.errors} errors")
        if self.latency is not None:
            text += f"; {self.latency}"
        for name, part in (("read", self.read), ("write", self.write)):
            if part is not None:
                text += f"\n  {name}: {part}"
        return text


def hist_index(ns: int) -> int:
    """The latency histogram bucket of ``ns`` nanoseconds (``sgpy_hist_index`` in sgpy/_sg.c)."""
    if ns < _SUB:
        return max(0, ns)
    msb = ns.bit_length() - 1
    return _SUB + (msb - _SUB_BITS) * _SUB + ((ns >> (msb - _SUB_BITS)) & (_SUB - 1))


_M64 = 0xFFFFFFFFFFFFFFFF
_SEED_ZERO = 0x9E3779B97F4A7C15  # a zero seed would stick xorshift at zero
#: A mixed job's read-or-write choices come from their own generator, seeded
#: from the job's seed with this (so its LBAs are those of an unmixed job).
_MIX_SEED = 0xD1B54A32D192ED03
#: The most commands per second ``rate_iops=`` takes (one per nanosecond).
RATE_IOPS_MAX = 10**9


def _xorshift(state: int) -> Tuple[int, int]:
    """xorshift64* (Vigna 2016), as ``sgpy_xorshift`` in sgpy/_sg.c: (new state, output)."""
    x = state
    x ^= x >> 12
    x = (x ^ (x << 25)) & _M64
    x ^= x >> 27
    return x, (x * 0x2545F4914F6CDD1D) & _M64


def mix_seed(seed: int) -> int:
    """The state a mixed job's read-or-write generator starts from, for the job's ``seed``."""
    return ((seed & _M64) ^ _MIX_SEED) or _SEED_ZERO


def mix_is_write(state: int, read_percent: int) -> Tuple[int, bool]:
    """One read-or-write choice of a mixed job, as ``sgpy_job_prepare`` makes it: (new state, write?)."""
    state, out = _xorshift(state)
    return state, (out >> 32) % 100 >= read_percent


#: Bytes of a data stamp at the start of each block: its LBA, then the job's tag.
STAMP_BYTES = 16


def stamp_blocks(data: bytes, lba: int, tag: int, block_size: int) -> bytes:
    """``data`` with each block's first 16 bytes replaced by its LBA and ``tag`` (big-endian)."""
    out = bytearray(data)
    for b in range(len(out) // block_size):
        p = b * block_size
        out[p:p + STAMP_BYTES] = (lba + b).to_bytes(8, "big") + tag.to_bytes(8, "big")
    return bytes(out)


def find_mismatch(data: bytes, lba: int, tag: int, block_size: int) -> Optional[Tuple[int, int, int]]:
    """The first block of ``data`` (read from ``lba`` on) whose stamp is not its own:
    ``(block index, LBA found, tag found)``, or None when every whole block checks out."""
    for b in range(len(data) // block_size):
        p = b * block_size
        found_lba = int.from_bytes(data[p:p + 8], "big")
        found_tag = int.from_bytes(data[p + 8:p + 16], "big")
        if found_lba != lba + b or found_tag != tag:
            return b, found_lba, found_tag
    return None


class _TokenBucket:
    """A rate limit of ``rate`` commands per second: the bucket of ``sgpy_job_token`` in sgpy/_sg.c
    (one token at the start, at most ``_binding.RATE_BURST_NS`` of them saved up), for the IO engine."""

    __slots__ = ("rate", "interval", "rem", "frac", "next_ns")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.interval, self.rem = divmod(1_000_000_000, rate)
        self.frac = 0
        self.next_ns = time.monotonic_ns()  # CLOCK_MONOTONIC, as the C loop's clock

    def take(self, now: int) -> bool:
        """Take a token at ``now`` (ns): True when a command may go now."""
        if now < self.next_ns:
            return False
        self.next_ns = max(self.next_ns, now - _binding.RATE_BURST_NS) + self.interval
        self.frac += self.rem
        if self.frac >= self.rate:
            self.frac -= self.rate
            self.next_ns += 1
        return True


class _RateTimer:
    """The IO engine's rate-limit timer as a reactor endpoint (a :class:`sgpy.transport.Endpoint`):
    when it fires, the job sends the commands that waited for a token."""

    def __init__(self, job: "_IoJob") -> None:
        self.job = job
        self.channel = job.channel
        self.fd = _binding.timer_new()
        self.inflight: dict = {}
        self.closed = False

    def on_events(self, events: int) -> int:
        """The timer fired (reactor lock held)."""
        _binding.timer_clear(self.fd)
        self.job._tick()
        return 0

    def settle(self) -> int:
        """Nothing to settle: the timer delivers no completion."""
        return 0

    def close(self) -> None:
        """The reactor is closing: end the job now (the job closes the timer's fd)."""
        if not self.job.returned:
            self.job._abort(ChannelClosed(f"the reactor of {self.channel!r} was closed during the job"))


class _LbaPlan:
    """Which LBA each command gets: the same plan, in the same order, as ``sgpy_job_next_lba``
    (so a seeded random job sends the same LBAs on every transport)."""

    __slots__ = ("mode", "first", "units", "step", "lbas", "index", "rng")

    def __init__(self, mode: int, first: int, units: int, step: int, lbas: Optional[Sequence[int]],
                 seed: int) -> None:
        self.mode, self.first, self.units, self.step = mode, first, units, step
        self.lbas = lbas
        self.index = 0
        self.rng = seed & _M64 or _SEED_ZERO

    def next(self) -> int:
        mode = self.mode
        if mode == _binding.LBA_SEQUENTIAL:
            k = self.index % self.units
            self.index += 1
            return self.first + k * self.step
        if mode == _binding.LBA_RANDOM:
            self.rng, x = _xorshift(self.rng)  # as in sgpy_job_random
            return self.first + x % self.units * self.step
        if mode == _binding.LBA_LIST and self.lbas is not None:
            v = self.lbas[self.index % len(self.lbas)]
            self.index += 1
            return int(v)
        return self.first


class Job:
    """A running (or finished) job; made by :meth:`sgpy.channel.Channel.run`.

    A resource: it owns its fds and buffers until it has finished, and
    releases them itself.  Attributes: ``channel``, ``command`` (the
    template, resolved for the block size), ``queue_depth``, ``engine``
    (``"c"``: the loop in the extension, on sg nodes; ``"io"``: IO objects
    through the channel, on any other channel — iSCSI, block devices),
    ``returned``, ``exception`` (the first error when ``stop_on_error``, or
    what ended the job: device gone, channel closed), ``errors`` (up to
    ``max_errors`` failures, each a :class:`~sgpy.errors.TaskFailed` naming
    the command with the LBA it was sent with), ``stats``
    (:class:`JobStats`, final once ``returned``); a mixed job's ``write``
    (its write template, resolved) and ``read_percent``, and ``rate_iops``
    (None when unlimited).
    """

    engine = ""
    _inherited = False

    def __init__(
        self,
        channel: "Channel",
        command: Any,
        *,
        count: Optional[int] = None,
        seconds: Optional[float] = None,
        queue_depth: int = 1,
        lba: LbaSpec = None,
        lba_range: Optional[Tuple[int, int]] = None,
        seed: Optional[int] = None,
        stop_on_error: bool = True,
        timeout: Optional[int] = None,
        latency: bool = True,
        max_fds: Optional[int] = None,
        max_errors: int = 100,
        stamp: Optional[int] = None,
        verify: Optional[int] = None,
        write: Optional[Command] = None,
        read_percent: Optional[int] = None,
        rate_iops: Optional[int] = None,
        sync: bool = False,
    ) -> None:
        if not isinstance(command, Command):
            raise TypeError(f"run() takes a command template (sgpy.command.Read10(...), RawCommand(...)), "
                            f"not {type(command).__name__} {command!r}")
        if channel.closed or channel.gone:
            raise channel._refusal(command)
        if write is not None and not isinstance(write, Command):
            raise TypeError(f"write= is the write command template of a mixed job (sgpy.command.Write16(...)), "
                            f"not {type(write).__name__} {write!r}")
        if channel.read_only or channel.policy is not None:
            _safety.check_channel(channel, command)
            if write is not None:
                _safety.check_channel(channel, write)
        if read_percent is not None:
            if write is None:
                raise JobError("read_percent= goes with write=, the write command a mixed job sends "
                               "between its reads")
            _check.whole(read_percent, "read_percent", low=0, high=100, error=JobError)
        if rate_iops is not None:
            _check.whole(rate_iops, "rate_iops", high=RATE_IOPS_MAX, error=JobError)
        max_fds = channel.max_fds if max_fds is None else _check.whole(max_fds, "max_fds", error=JobError)
        _check.whole(queue_depth, "queue_depth", error=JobError)
        self._check_depth(channel, queue_depth, max_fds)
        if count is not None:
            _check.whole(count, "count", error=JobError)
        if seconds is not None:
            seconds = _check.seconds(seconds, error=JobError)
        _check.whole(max_errors, "max_errors", low=0, error=JobError)
        timeout = channel.timeout if timeout is None else _check.timeout_ms(timeout)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed must be an int, not {type(seed).__name__} {seed!r}")

        self.channel = channel
        self.queue_depth = queue_depth
        self.stop_on_error = stop_on_error
        self.max_errors = max_errors
        self.seconds = seconds
        self.returned = False
        self._ended = threading.Event()  # set by _finish, in whichever thread ends the job
        self.exception: Optional[BaseException] = None
        self.errors: List[TaskFailed] = []
        self._error_count = 0
        self._recovered = 0
        self._callbacks: Optional[List[Callable[["Job"], Any]]] = None
        self._t0 = 0.0
        self._latency = latency
        self._stats: Optional[JobStats] = None
        self._sync = sync
        self._max_fds = max_fds
        self.rate_iops = rate_iops
        self.read_percent = (50 if read_percent is None else read_percent) if write is not None else None
        self._werror_count = 0
        self._wrecovered = 0

        cmd: Any = command
        if cmd.needs_block_size:
            bs = channel.block_size
            cmd = cmd.for_block_size(bs)
            length = cmd.transfer_bytes(bs)
        else:
            bs = 0
            length = cmd.transfer_bytes()
        n = len(cmd.cdb)
        low, high = channel.cdb_lengths
        if n < low or n > high:
            raise channel._cdb_refused(cmd, n)
        if length > channel.max_transfer:
            raise channel._too_large(cmd, length)
        if cmd.direction is Direction.TO_DEVICE:
            data = cmd.data
            size = -1 if data is None else memoryview(data).nbytes
            if size != length:
                raise EncodeError(f"{cmd.name}: a write job sends the template's data= ({length} bytes) with "
                                  f"every command; pass data= of exactly that size"
                                  f"{'' if size < 0 else f' (it holds {size})'}")
        self.command = cmd
        self.length = length
        self._timeout = timeout
        self._block_size = bs
        self.write: Any = None if write is None else self._mixed_write(cmd, write, bs, length)
        self._stamp = self._check_stamp(self.write or cmd, stamp, "stamp", Direction.TO_DEVICE, bs, length)
        self._verify = self._check_stamp(cmd, verify, "verify", Direction.FROM_DEVICE, bs, length)
        if self.write is not None and self._verify is not None and self._stamp != self._verify:
            raise JobError("a mixed job with verify= must stamp its writes with the same tag (stamp=verify=TAG): "
                           "its reads meet blocks its own writes have just written")

        mode, first, units, step, lbas, off, nbytes = self._lba_plan(cmd, lba, lba_range, bs, length)
        if (self.write is not None and mode == _binding.LBA_FIXED
                and getattr(self.write, "lba", None) != getattr(cmd, "lba", None)):
            raise JobError(f"a mixed job without lba= reads and writes one place: {cmd.name} has lba="
                           f"{getattr(cmd, 'lba', None)}, {self.write.name} lba={getattr(self.write, 'lba', None)}")
        if count is None and seconds is None:
            if lbas is None:
                raise JobError("say how long the job runs: count=, seconds=, or lba= a list of LBAs")
            count = len(lbas)
        self._limit = count or 0
        if seed is None:
            seed = random.getrandbits(64)
        self._plan = (mode, first, units, step, lbas, off, nbytes, seed & _M64)

    # -- set-up ------------------------------------------------------------------

    @staticmethod
    def _check_stamp(cmd: Any, tag: Optional[int], what: str, direction: Direction, bs: int,
                     length: int) -> Optional[int]:
        """Validate ``stamp=``/``verify=``: a 64-bit tag, on block transfers of the right direction."""
        if tag is None:
            return None
        if not isinstance(tag, int) or isinstance(tag, bool) or not 0 <= tag <= _M64:
            raise JobError(f"{what}= is a tag from 0 to 2**64-1, not {tag!r}")
        if cmd.direction is not direction:
            kind = "write" if direction is Direction.TO_DEVICE else "read"
            raise JobError(f"{what}= goes with {kind} commands; {cmd.name} is not one")
        if not bs or not length or length % bs or bs < STAMP_BYTES:
            raise JobError(f"{what}= needs whole logical blocks of at least {STAMP_BYTES} bytes; "
                           f"{cmd.name} moves {length} bytes")
        return tag

    @staticmethod
    def _lba_field(cmd: Any) -> Optional[Tuple[int, int]]:
        layout = getattr(cmd, "_layout", None)
        spec = None if layout is None else next((s for s in layout.fields if s.name == "lba"), None)
        return None if spec is None else (spec.byte, spec.width)

    def _mixed_write(self, cmd: Any, write: Any, bs: int, length: int) -> Any:
        """Validate a mixed job's ``write=`` template against the read template ``cmd``; resolved for ``bs``."""
        if cmd.direction is not Direction.FROM_DEVICE:
            raise JobError(f"a mixed job's template is its read command; {cmd.name} does not read (pass the "
                           "read as the template and the write as write=)")
        if write.direction is not Direction.TO_DEVICE:
            raise JobError(f"write= is a command that writes; {write.name} does not")
        if write.needs_block_size:
            write = write.for_block_size(self.channel.block_size)
            wlength = write.transfer_bytes(self.channel.block_size)
        else:
            wlength = write.transfer_bytes()
        if wlength != length or len(write.cdb) != len(cmd.cdb):
            raise JobError(f"a mixed job's read and write move the same blocks: {cmd.name} moves {length} bytes "
                           f"with a {len(cmd.cdb)}-byte CDB, {write.name} {wlength} with a {len(write.cdb)}-byte "
                           "CDB")
        if self._lba_field(write) != self._lba_field(cmd):
            raise JobError(f"{cmd.name} and {write.name} keep their LOGICAL BLOCK ADDRESS in different places; "
                           "use the read and write of one CDB size (Read16 and Write16...)")
        data = write.data
        size = -1 if data is None else memoryview(data).nbytes
        if size != wlength:
            raise EncodeError(f"{write.name}: a mixed job sends write='s data= ({wlength} bytes) with every write; "
                              f"pass data= of exactly that size{'' if size < 0 else f' (it holds {size})'}")
        return write

    def _mismatch(self, data: bytes, lba: int) -> Optional[DataMismatch]:
        """A DataMismatch for the first block of ``data`` that is not stamped as its own, or None."""
        tag = self._verify if self._verify is not None else 0
        found = find_mismatch(data, lba, tag, self._block_size)
        if found is None:
            return None
        b, found_lba, found_tag = found
        return DataMismatch(lba=lba + b, found_lba=found_lba, expected_tag=tag, found_tag=found_tag,
                            command=self._command_at(lba))

    @staticmethod
    def _check_depth(channel: "Channel", queue_depth: int, max_fds: int) -> None:
        if not 1 <= queue_depth <= _binding.SG_MAX_QUEUE * max_fds:
            raise JobError(f"queue_depth {queue_depth} is not in 1..{_binding.SG_MAX_QUEUE * max_fds} "
                           f"(sg takes {_binding.SG_MAX_QUEUE} commands per fd, and the job may open "
                           f"{max_fds} fds; raise max_fds for more)")

    def _lba_plan(self, cmd: Any, lba: LbaSpec, lba_range: Optional[Tuple[int, int]], bs: int,
                  length: int) -> Tuple[int, int, int, int, Optional[Sequence[int]], int, int]:
        """(mode, first, units, step, list, byte offset, byte width) of the LBA plan."""
        # A RawCommand has no layout: its bytes are not interpreted, so it
        # has no LBA field to vary.
        layout = getattr(cmd, "_layout", None)
        spec = None if layout is None else next((s for s in layout.fields if s.name == "lba"), None)
        if lba is None:
            if lba_range is not None:
                raise JobError("lba_range= needs lba='sequential' or lba='random'")
            return _binding.LBA_FIXED, getattr(cmd, "lba", 0) or 0, 1, 1, None, -1, 0
        if spec is None:
            raise JobError(f"{cmd.name} has no LOGICAL BLOCK ADDRESS field to vary")
        if spec.bit != 7 or spec.width % 8:
            raise JobError(f"{cmd.name}'s LOGICAL BLOCK ADDRESS is a {spec.width}-bit field inside a byte "
                           "(SBC-4 READ(6)/WRITE(6)); jobs vary whole-byte LBAs: use the 10-, 16- or "
                           "32-byte command")
        off, nbytes, top = spec.byte, spec.width // 8, spec.max_value
        if isinstance(lba, str):
            if lba not in ("sequential", "random"):
                raise JobError(f"lba={lba!r}: use 'sequential', 'random', or a sequence of LBAs")
            step = self._blocks_per_command(cmd, bs, length)
            if lba_range is None:
                first, stop = 0, self.channel.num_blocks
            else:
                first, stop = lba_range
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, stop)):
                    raise TypeError(f"lba_range is (first, stop) in whole blocks, not {lba_range!r}")
                if first < 0 or stop <= first:
                    raise JobError(f"lba_range {lba_range!r} is empty or negative")
            units = (stop - first) // step
            if units < 1:
                raise JobError(f"lba_range [{first}, {stop}) is smaller than one command's {step} blocks")
            last = first + (units - 1) * step
            if last > top:
                raise JobError(f"LBA {last} does not fit {cmd.name}'s {spec.width}-bit LOGICAL BLOCK ADDRESS "
                               "field; use a 16-byte command (Read16, Write16...) or a smaller lba_range")
            if lba_range is not None:
                blocks = self.channel.num_blocks
                if stop > blocks:
                    raise JobError(f"lba_range [{first}, {stop}) goes past the end of {self.channel.path}: it has "
                                   f"{blocks} blocks (LBAs 0 to {blocks - 1})")
            mode = _binding.LBA_SEQUENTIAL if lba == "sequential" else _binding.LBA_RANDOM
            return mode, first, units, step, None, off, nbytes
        if lba_range is not None:
            raise JobError("lba_range= goes with lba='sequential' or lba='random', not a list")
        lbas = array.array("Q")
        for v in lba:
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
                raise JobError(f"LBA {v!r} does not fit {cmd.name}'s {spec.width}-bit LOGICAL BLOCK ADDRESS")
            lbas.append(v)
        if not lbas:
            raise JobError("lba= is an empty list")
        return _binding.LBA_LIST, 0, 1, 1, lbas, off, nbytes

    @staticmethod
    def _blocks_per_command(cmd: Any, bs: int, length: int) -> int:
        if length and bs:
            return max(1, length // bs)
        for name in _LENGTH_FIELDS:
            v = getattr(cmd, name, None)
            if isinstance(v, int) and v > 0:
                return v
        return 1

    def _command_at(self, lba: int, write: bool = False) -> Any:
        """The template (a mixed job's write template with ``write``) as sent with ``lba``."""
        cmd = self.write if write and self.write is not None else self.command
        if getattr(cmd, "lba", None) is None or cmd.lba == lba:
            return cmd
        try:
            return attr.evolve(cmd, lba=lba)
        except (EncodeError, TypeError, ValueError):
            return cmd

    def _deadline(self) -> float:
        return self._t0 + self.seconds if self.seconds is not None else 0.0

    # -- outcomes shared by both engines -----------------------------------------

    def _failed(self, error: Optional[BaseException], write: bool = False) -> None:
        """Count one failed command (a mixed job's write with ``write``); with ``stop_on_error`` the job
        sends no more."""
        self._error_count += 1
        if write:
            self._werror_count += 1
        if isinstance(error, TaskFailed) and len(self.errors) < self.max_errors:
            self.errors.append(error)
        if self.stop_on_error:
            if self.exception is None:
                self.exception = error
            self._halt()

    def _gone_error(self, err: int) -> BaseException:
        if err in _GONE:
            # The channel's own IOs fail with DeviceGone too (exactly once):
            # marking it gone alone would leave them pending for ever.
            reactor = self.channel.reactor
            with reactor.lock:
                self.channel.transport.lost(err)
            return DeviceGone(f"{self.channel.path}: the device went away during the job "
                              f"({os.strerror(err)})", command=self.command, host_status=1)
        if err == _errno.ENOMEM:
            return KernelMemoryError(
                f"{self.channel.path}: the kernel could not allocate the buffers of the job's {self.length}-byte "
                "commands (ENOMEM; drivers/scsi/sg.c sg_build_indirect): lower queue_depth or split the "
                "transfer", command=self.command)
        return TaskFailed(f"{self.channel.path}: the job stopped: {os.strerror(err)} (errno {err})",
                          command=self.command)

    def _finish(self) -> None:
        if self.returned:
            return
        self._stats = self._snapshot(time.monotonic())
        self._release()
        with self.channel.reactor.lock:  # a synchronous job ends in its own thread
            # returned and the callbacks taken together: add_done_callback
            # checks and queues under the same lock, so none is lost between.
            self.returned = True
            jobs = self.channel.transport.jobs
            if self in jobs:
                jobs.remove(self)
            callbacks = self._callbacks
            self._callbacks = None
        self._ended.set()
        if callbacks is not None:
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:  # a callback's failure must not stop the reactor
                    pass

    def _make_stats(self, now: float, completed: int, submitted: int, short: int, hist: Optional[List[int]],
                    lat_count: int, lat_min: int, lat_max: int, lat_sum: int, errors: Optional[int] = None,
                    recovered: Optional[int] = None, read: Optional[JobStats] = None,
                    write: Optional[JobStats] = None) -> JobStats:
        """JobStats from counters (the whole job's errors and recoveries unless given: a part's)."""
        lat = None
        if hist is not None:
            buckets = tuple((*bucket_bounds(i), n) for i, n in enumerate(hist) if n)
            lat = Latency(count=lat_count, min_ns=lat_min, mean_ns=(lat_sum / lat_count) if lat_count else 0.0,
                          max_ns=lat_max, histogram=buckets)
        return JobStats(commands=completed, errors=self._error_count if errors is None else errors,
                        recovered=self._recovered if recovered is None else recovered,
                        short_transfers=short, submitted=submitted, seconds=max(0.0, now - self._t0),
                        bytes=completed * self.length, latency=lat, read=read, write=write)

    def _mixed_stats(self, now: float, total: Tuple[int, int, int], hist: Optional[List[int]],
                     lat: Tuple[int, int, int, int], wtotal: Tuple[int, int, int], whist: Optional[List[int]],
                     wlat: Tuple[int, int, int, int], rlat_min_max: Tuple[int, int]) -> JobStats:
        """A mixed job's stats: ``total`` (completed, submitted, short) and ``lat`` (count, min, max, sum)
        for all commands, ``wtotal``/``whist``/``wlat`` for its writes; the reads are the difference."""
        rtotal = (total[0] - wtotal[0], total[1] - wtotal[1], total[2] - wtotal[2])
        rhist = None if hist is None or whist is None else [a - b for a, b in zip(hist, whist)]
        rcount, rsum = lat[0] - wlat[0], lat[3] - wlat[3]
        werr, wrec = self._werror_count, self._wrecovered
        read = self._make_stats(now, *rtotal, rhist, rcount, rlat_min_max[0], rlat_min_max[1], rsum,
                                errors=self._error_count - werr, recovered=self._recovered - wrec)
        write = self._make_stats(now, *wtotal, whist, *wlat, errors=werr, recovered=wrec)
        return self._make_stats(now, *total, hist, *lat, read=read, write=write)

    # -- engine hooks --------------------------------------------------------------

    def _run_sync(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _start_async(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _halt(self) -> None:  # pragma: no cover - overridden
        """Send no new command (those in flight still come back)."""
        raise NotImplementedError

    def _idle(self) -> bool:  # pragma: no cover - overridden
        """True when the job has started and has nothing in flight."""
        raise NotImplementedError

    def _abort(self, exc: BaseException) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _snapshot(self, now: float) -> JobStats:  # pragma: no cover - overridden
        raise NotImplementedError

    def _release(self) -> None:
        """Give back what the job holds (fds, registrations)."""

    def _done_count(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- the IO-like interface -----------------------------------------------------

    @property
    def stats(self) -> JobStats:
        """Counters so far (final once :attr:`returned`)."""
        if self._stats is not None:
            return self._stats
        return self._snapshot(time.monotonic())

    @_interrupt.entry
    def poll(self) -> bool:
        """Make progress without blocking; True once the job has finished."""
        if not self.returned:
            self.channel.reactor.poll()
        return self.returned

    @_interrupt.entry
    def wait(self, timeout: Optional[float] = None) -> JobStats:
        """Block until the job finished; return its stats, or raise what ended it.

        With ``stop_on_error`` the first failure is raised (the other commands
        in flight were collected first); without it, failures are in
        :attr:`errors` and ``stats.errors``.  TimeoutError leaves the job running.
        """
        if not self.returned and not self.channel.reactor.wait_until(lambda: self.returned, timeout):
            raise TimeoutError(f"{self!r} still running after {timeout} s")
        if self.exception is not None:
            raise self.exception
        return self.stats

    def _close(self, exc: BaseException) -> None:
        """The channel is closing (reactor lock held): send no more, end with ``exc``.

        An asynchronous job with nothing in flight ends here; one with
        commands in flight ends when the reactor has collected them.  A
        synchronous job runs in another thread's C loop: it is only told to
        stop (``stopping``, read by that loop before every command), and
        ends, closing its own fds, in that thread; close() waits for it.
        """
        if self.returned:
            return
        if self.exception is None:
            self.exception = exc
        self._halt()
        if not self._sync and self._idle():
            self._finish()

    def _inherit(self) -> None:
        """This process is a child that inherited the job through fork() (see Channel._inherit)."""
        self._inherited = True

    def _close_inherited(self) -> None:
        """The child closes its inherited channel: close the child's copies of the job's fds."""
        if self.exception is None:
            self.exception = InheritedChannel(f"{self.channel!r}'s job was inherited through fork()")
        self.returned = True

    @_interrupt.entry
    def cancel(self) -> None:
        """Send no more commands; the job ends when those in flight came back."""
        with self.channel.reactor.lock:
            if not self.returned:
                self._halt()
                if self._idle():
                    self._finish()

    @_interrupt.entry
    def add_done_callback(self, fn: Callable[["Job"], Any]) -> None:
        """Call ``fn(job)`` when the job finishes (at once if it has)."""
        with self.channel.reactor.lock:  # see _finish
            if not self.returned:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def __repr__(self) -> str:
        state = "returned" if self.returned else "running"
        return f"Job({self.command.name}, queue_depth={self.queue_depth}, {state}, {self._done_count()} done)"


class _SgJob(Job):
    """The C engine: the job's own sg fds and epoll instance, the loop in sgpy/_sg.c."""

    engine = "c"

    def __init__(self, channel: "Channel", command: Any, **options: Any) -> None:
        self._fds: List[int] = []
        self._epfd = -1
        self._endpoint = _JobEndpoint(self)
        self._registered = False
        super().__init__(channel, command, **options)
        mode, first, units, step, lbas, off, nbytes, seed = self._plan
        cmd, length, queue_depth = self.command, self.length, self.queue_depth
        direction = cmd.direction
        wbuf: Any = None
        wshare = False
        if self.write is not None:
            # A mixed job: reads land in one buffer per slot; writes go from
            # the write template's data, one copy per slot when stamped.
            wshare = self._stamp is None
            wbuf = bytes(self.write.data) if wshare else bytearray(bytes(self.write.data) * queue_depth)
        if direction is Direction.TO_DEVICE and self._stamp is not None:
            buf: Any = bytearray(bytes(cmd.data) * queue_depth)  # one per slot: each gets its own stamps
            share = False
        elif direction is Direction.TO_DEVICE:
            buf = bytes(cmd.data)
            share = True
        elif length:
            buf = bytearray(length * queue_depth)
            share = False
        else:
            buf, share = None, False
        # A rate-limited job waits for its tokens on its epoll instance (the timer), never in SG_IO.
        self._sync_ioctl = self._sync and queue_depth == 1 and not self.rate_iops
        nfds = 1 if self._sync_ioctl else min(queue_depth, self._max_fds)
        try:
            for _ in range(nfds):
                fd = channel.open_fd()
                self._fds.append(fd)
                if length:
                    self._reserve(fd, length)
            self._core = _binding.JobCore(
                fds=self._fds, depth=queue_depth, cdb=cmd.cdb, direction=_binding.DXFER[direction], buf=buf,
                buf_len=length, share_buf=share, timeout_ms=self._timeout, lba_offset=off, lba_bytes=nbytes,
                lba_mode=mode, lba_first=first, lba_units=units, lba_step=step, lba_list=lbas,
                seed=seed, limit=self._limit, deadline_ns=0, latency=self._latency, sync=self._sync_ioctl,
                block_size=self._block_size, stamp=self._stamp is not None, verify=self._verify is not None,
                tag=self._stamp if self._stamp is not None else (self._verify or 0),
                write_cdb=None if self.write is None else self.write.cdb, write_buf=wbuf, write_share=wshare,
                read_pct=self.read_percent if self.read_percent is not None else 100, mix_seed=mix_seed(seed),
                rate=self.rate_iops or 0)
            if not self._sync_ioctl:
                self._epfd = self._core.make_epoll()
        except BaseException:
            self._close_fds()
            raise

    @staticmethod
    def _reserve(fd: int, length: int) -> None:
        """Grow the fd's reserve buffer to the transfer (sg.c uses it for one command per fd)."""
        try:
            current = _binding.get_reserved_size(fd)
        except OSError:
            return  # the kernel then allocates per command: slower, still correct
        _binding.grow_reserve(fd, length, current)

    # -- running -----------------------------------------------------------------

    def _start(self) -> None:
        self._t0 = time.monotonic()
        if self.seconds is not None:
            self._core.j.deadline_ns = int(self._deadline() * 1e9)  # time.monotonic is CLOCK_MONOTONIC
        err = self._core.prime()
        if err:
            self._fatal(err)

    @_interrupt.interruptible
    def _run_sync(self) -> None:
        """Run to the end in this thread (the C loop releases the GIL).

        The job is one of the channel's jobs while it runs, so that close()
        from another thread stops it (and waits for it) before closing.
        """
        core = self._core
        channel = self.channel
        try:
            # Inside the try: Ctrl-C between joining the channel's jobs and
            # the loop must still end the job (close() waits for it).
            with channel.reactor.lock:
                if channel.closed or channel.gone:
                    self.exception = channel._refusal(self.command)
                    self._finish()  # nothing was sent; closes the job's fds
                    return
                channel.transport.jobs.append(self)
            self._start()
            while not self.returned:
                if self._sync_ioctl:
                    n = core.run_sync(_BUDGET)
                else:
                    n = core.step(_SLICE_MS, _BUDGET)
                self._after(n)
                if _interrupt.PENDING:
                    _interrupt.deliver()
        except BaseException as exc:  # e.g. KeyboardInterrupt: stop, drain, then let it through
            if not self.returned:
                self._abort(exc)
            raise

    @_interrupt.protected
    def _after(self, n: int) -> None:
        """Handle what the last C call left: parked slots, a fatal errno, the end."""
        core = self._core
        parked = core.take_parked()
        if parked:
            self._handle_parked(parked)
        if n < 0 and not self.returned:
            self._fatal(-n)
            return
        j = core.j
        if j.inflight == 0 and not j.nparked and not j.nthrottled and not self.returned:
            if not self._sync_ioctl or (n == 0 and not parked):
                self._finish()

    def _handle_parked(self, slots: List[int]) -> None:
        core = self._core
        for i in slots:
            r = core.slot_result(i)
            lba = core.slot_lba(i)
            write = core.slot_is_write(i)
            comp = classify(status=r.status, host_status=r.host_status, driver_status=r.driver_status,
                            sense=r.sense, resid=r.resid, command=self._command_at(lba, write))
            mismatch = None
            if comp.ok and self._verify is not None and not write:
                data = core.slot_data(i)
                mismatch = self._mismatch(data[:len(data) - max(0, r.resid)], lba)
            if mismatch is not None:
                self._failed(mismatch)
            elif comp.ok:
                core.j.completed += 1
                if write:
                    core.j.wcompleted += 1
                if comp.recovered:
                    self._recovered += 1
                    if write:
                        self._wrecovered += 1
            else:
                self._failed(comp.error, write)
            err = core.resubmit(i)
            if err:
                self._fatal(err)
                return

    def _halt(self) -> None:
        self._core.j.stopping = 1

    def _idle(self) -> bool:
        return bool(self._t0) and self._core.j.inflight == 0 and not self._sync_ioctl

    def _drain(self) -> None:
        """Collect what is in flight (bounded by the command timeout)."""
        core = self._core
        if self._sync_ioctl:
            return
        deadline = time.monotonic() + self._timeout / 1000.0 + 5.0
        while core.j.inflight and time.monotonic() < deadline:
            n = core.step(_SLICE_MS, _BUDGET)
            parked = core.take_parked()
            if parked:
                self._handle_parked(parked)
            if n < 0:
                break

    def _fatal(self, err: int) -> None:
        """The job cannot go on (errno ``err``): end it, keeping what completed."""
        self._core.j.stopping = 1
        if self.exception is None:
            self.exception = self._gone_error(err)
        if err not in _GONE:
            self._drain()  # the rest is lost with the fds otherwise
        self._finish()

    @_interrupt.protected
    def _abort(self, exc: BaseException) -> None:
        """Stop submitting, wait for what is in flight (bounded), then finish with ``exc``."""
        self._core.j.stopping = 1
        if self.exception is None:
            self.exception = exc
        self._drain()
        self._finish()

    def _release(self) -> None:
        self._close_fds()
        if self._registered:
            self._registered = False
            reactor = self.channel.reactor
            self.channel.transport.begin(-1)
            if self.exception is not None or self._error_count:
                reactor.failed += 1
            else:
                reactor.completed += 1

    def _close_inherited(self) -> None:
        # Only the child's copies: no EPOLL_CTL_DEL on the reactor's epoll
        # instance, which is the parent's too (Channel._close_inherited).
        self._registered = False
        self._close_fds()
        super()._close_inherited()

    def _close_fds(self) -> None:
        if self._epfd >= 0:
            ep, self._epfd = self._epfd, -1
            if self._registered:
                self.channel.reactor.unregister(self._endpoint)  # before the fd is closed
            try:
                os.close(ep)
            except OSError:
                pass
        fds, self._fds = self._fds, []
        core = getattr(self, "_core", None)
        if core is not None and core.timer_fd >= 0:
            fds.append(core.timer_fd)  # the rate limit's timer (sgpy_job_epoll made it)
            core.j.timerfd = -1
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def _snapshot(self, now: float) -> JobStats:
        core = self._core
        j = core.j
        hist = core.histogram() if self._latency else None
        total = (int(j.completed), int(j.submitted), int(j.short_transfers))
        lat = (int(j.lat_count), int(j.lat_min), int(j.lat_max), int(j.lat_sum))
        if self.write is None:
            return self._make_stats(now, *total, hist, *lat)
        whist = core.write_histogram() if self._latency else None
        return self._mixed_stats(now, total, hist, lat, (int(j.wcompleted), int(j.wsubmitted), int(j.wshort_transfers)),
                                 whist, (int(j.wlat_count), int(j.wlat_min), int(j.wlat_max), int(j.wlat_sum)),
                                 (int(j.rlat_min), int(j.rlat_max)))

    def _done_count(self) -> int:
        return int(self._core.j.completed) if hasattr(self, "_core") else 0

    def _on_ready(self) -> int:
        """The job's epoll fd is readable: run the C loop over what is ready (reactor lock held)."""
        if self.returned:
            return 0
        n = self._core.step(0, _BUDGET, _TURN_NS)
        self._after(n)
        return max(n, 0)

    def _start_async(self) -> None:
        reactor = self.channel.reactor
        with reactor.lock:
            self._endpoint.fd = self._epfd
            reactor.register(self._endpoint)
            self._registered = True
            self.channel.transport.begin(1)
            reactor.submitted += 1
            self.channel.transport.jobs.append(self)
            try:
                self._start()
                if not self.returned:
                    self._after(0)
            except BaseException:
                if not self.returned:
                    self._abort(ChannelClosed("the job could not start"))
                raise
        reactor.wake()


class _JobEndpoint:
    """A job's epoll fd as the reactor watches it (a :class:`sgpy.transport.Endpoint`)."""

    __slots__ = ("job", "fd")

    #: Always empty: a job's commands are not IOs (the reactor's watchdog skips them).
    inflight: Dict[int, Any] = {}

    def __init__(self, job: "_SgJob") -> None:
        self.job = job
        self.fd = -1

    def __repr__(self) -> str:
        return f"JobEndpoint(fd={self.fd}, {self.job!r})"

    @property
    def closed(self) -> bool:
        """True once the job ended (its fds are closed)."""
        return self.job.returned

    @closed.setter
    def closed(self, value: bool) -> None:
        pass  # the reactor marks endpoints closed before close(); the job tracks it itself

    def on_events(self, events: int) -> int:
        """EPOLLIN on the job's epoll fd: run the C loop over what is ready (reactor lock held)."""
        return self.job._on_ready()

    def settle(self) -> int:
        """Nothing to settle: the C loop hands no completion to Python."""
        return 0

    def close(self) -> None:
        """The reactor is closing: end the job now."""
        job = self.job
        if not job.returned:
            job._abort(ChannelClosed(f"the reactor of {job.channel!r} was closed during the job"))


class _IoJob(Job):
    """The IO engine: the same job through the channel's own IOs, for channels
    that are not sg nodes (iSCSI sessions; block devices and bsg nodes, one
    synchronous command at a time).  Same plan, same statistics, same errors;
    the per-command work is Python's."""

    engine = "io"

    @staticmethod
    def _check_depth(channel: "Channel", queue_depth: int, max_fds: int) -> None:
        if channel.sync_only and queue_depth != 1:
            raise JobError(f"{channel.path} is a {channel.kind} device: it takes one synchronous command at "
                           "a time, so queue_depth must be 1 (use its sg node for more)")
        if queue_depth < 1:
            raise JobError(f"queue_depth {queue_depth} must be at least 1")

    def __init__(self, channel: "Channel", command: Any, **options: Any) -> None:
        super().__init__(channel, command, **options)
        mode, first, units, step, lbas, _off, _nbytes, seed = self._plan
        self._lbas = _LbaPlan(mode, first, units, step, lbas, seed)
        self._mix = mix_seed(seed)
        # a mixed job's writes: completed, submitted, short; latency count, min, max, sum; reads' min, max
        self._w = [0, 0, 0]
        self._wlat = [0, 0, 0, 0]
        self._rlat = [0, 0]
        self._whist: Optional[List[int]] = [0] * _binding.HIST_BUCKETS if self._latency else None
        # The rate limit: commands that wait for a token (asynchronous channels: the timer sends them).
        self._bucket = _TokenBucket(self.rate_iops) if self.rate_iops else None
        self._waiting = 0
        self._timer: Optional[_RateTimer] = None
        self._stopping = False
        self._inflight = 0
        self._submitted = 0
        self._completed = 0
        self._short = 0
        self._hist: Optional[List[int]] = [0] * _binding.HIST_BUCKETS if self._latency else None
        self._lat = [0, 0, 0, 0]  # count, min, max, sum (ns)
        self._varies = mode != _binding.LBA_FIXED

    def _more(self) -> bool:
        if self._stopping or (self._limit and self._submitted >= self._limit):
            return False
        return not (self.seconds is not None and time.monotonic() >= self._deadline())

    def _next_command(self) -> Any:
        write = False
        if self.write is not None:
            self._mix, write = mix_is_write(self._mix, self.read_percent or 0)
            self._w[1] += write
        template = self.write if write else self.command
        if not self._varies and not (self._stamp is not None and template.direction is Direction.TO_DEVICE):
            return template
        lba = self._lbas.next()
        cmd = self._command_at(lba, write)
        if self._stamp is None or cmd.direction is not Direction.TO_DEVICE:
            return cmd
        return attr.evolve(cmd, data=stamp_blocks(template.data, lba, self._stamp, self._block_size))

    def _is_write(self, cmd: Any) -> bool:
        """Whether ``cmd`` is a mixed job's write."""
        return self.write is not None and getattr(cmd, "direction", None) is Direction.TO_DEVICE

    @staticmethod
    def _add_latency(lat: List[int], v: int) -> None:
        if lat[0] == 0 or v < lat[1]:
            lat[1] = v
        if v > lat[2]:
            lat[2] = v
        lat[0] += 1
        lat[3] += v

    def _record(self, start: int, write: bool = False) -> None:
        if self._hist is None:
            return
        v = max(0, time.monotonic_ns() - start)
        self._hist[hist_index(v)] += 1
        self._add_latency(self._lat, v)
        if write and self._whist is not None:
            self._whist[hist_index(v)] += 1
            self._add_latency(self._wlat, v)
        elif self.write is not None:
            r = self._rlat
            if self._lat[0] - self._wlat[0] == 1 or v < r[0]:
                r[0] = v
            if v > r[1]:
                r[1] = v

    def _outcome(self, io: Any) -> None:
        """Count one returned IO (success, recovered, short, or failure)."""
        error = io.error
        write = self._is_write(io.command)
        if error is None and self._verify is not None and not write:
            error = self._mismatch(io.data, getattr(io.command, "lba", 0) or 0)
            if error is not None:
                self._failed(error)
                return
        if error is None:
            self._completed += 1
            self._w[0] += write
            sense = io.sense
            if sense is not None and sense.sense_key == SenseKey.RECOVERED_ERROR:
                self._recovered += 1
                self._wrecovered += write
            hdr = io.hdr
            if hdr is not None and hdr.resid:
                self._short += 1
                self._w[2] += write
        elif isinstance(error, (DeviceGone, ChannelClosed)):
            if self.exception is None:
                self.exception = error
            self._stopping = True
        else:
            self._failed(error, write)

    # -- synchronous channels (block devices, bsg) and synchronous runs ----------

    @_interrupt.interruptible
    def _run_sync(self) -> None:
        self._t0 = time.monotonic()
        if not self.channel.sync_only:
            self._start_async()
            try:
                self.channel.reactor.wait_until(lambda: self.returned, None)
            except BaseException as exc:
                if not self.returned:
                    self._abort(exc)
                raise
            return
        try:
            while self._more() and self._token_now():
                cmd = self._next_command()
                self._submitted += 1
                self._inflight += 1
                start = time.monotonic_ns()
                try:
                    io = self.channel.execute(cmd, timeout=self._timeout, verify_handler=might_fail)
                finally:
                    self._inflight -= 1
                self._record(start, self._is_write(cmd))
                self._outcome(io)
                if _interrupt.PENDING:
                    _interrupt.deliver()
        except (DeviceGone, ChannelClosed) as exc:
            if self.exception is None:
                self.exception = exc
        except BaseException as exc:
            if self.exception is None:
                self.exception = exc
            self._finish()
            raise
        self._finish()

    def _deadline_ns(self) -> int:
        """The deadline in ``time.monotonic_ns()`` time, or 0."""
        return int(self._deadline() * 1e9) if self.seconds is not None else 0

    def _token_now(self) -> bool:
        """A synchronous channel's rate limit: sleep until a token is due; False when the job ended
        meanwhile (its deadline, a cancel).  Sleeps at most 100 ms at a time, so Ctrl-C is seen."""
        bucket = self._bucket
        while bucket is not None:
            now = time.monotonic_ns()
            if bucket.take(now):
                return True
            at, end = bucket.next_ns, self._deadline_ns()
            if end and end < at:
                at = end
            time.sleep(min(max(0, at - now), _SLICE_MS * 1_000_000) / 1e9)
            if _interrupt.PENDING:
                _interrupt.deliver()
            if not self._more():
                return False
        return True

    # -- asynchronous channels (iSCSI) ----------------------------------------------

    def _start_async(self) -> None:
        if self.channel.sync_only:
            raise SgError(f"{self.channel.path} is a {self.channel.kind} device: it takes synchronous SG_IO "
                          "commands only; run the job synchronously, or use its sg node")
        reactor = self.channel.reactor
        with reactor.lock:
            if not self._t0:
                self._t0 = time.monotonic()
            self.channel.transport.jobs.append(self)
            if self._bucket is not None:
                self._timer = _RateTimer(self)
                self.channel.reactor.register(self._timer)
            for _ in range(self.queue_depth):
                if not self._submit():
                    break
            if self._inflight == 0 and not self._waiting:
                self._finish()

    def _submit(self) -> bool:
        """Start one more command, or (rate limit) count it waiting for a token; False once the job
        sends no more."""
        if not self._more():
            self._waiting = 0
            return False
        bucket = self._bucket
        if bucket is not None and not bucket.take(time.monotonic_ns()):
            self._waiting += 1
            self._arm()
            return True
        return self._send()

    def _arm(self) -> None:
        """Arm the timer for the next token, or the deadline if sooner."""
        if self._timer is None or self._bucket is None:
            return
        at, end = self._bucket.next_ns, self._deadline_ns()
        _binding.timer_arm(self._timer.fd, min(at, end) if end else at)

    def _tick(self) -> None:
        """The timer fired (reactor lock held): send what the tokens now allow; end when done."""
        bucket = self._bucket
        while self._waiting and not self.returned and bucket is not None:
            if not self._more():
                self._waiting = 0
                break
            if not bucket.take(time.monotonic_ns()):
                self._arm()
                break
            self._waiting -= 1
            if not self._send():
                self._waiting = 0
        if self._inflight == 0 and not self._waiting and not self.returned:
            self._finish()

    def _send(self) -> bool:
        cmd = self._next_command()
        start = time.monotonic_ns()
        try:
            io = self.channel.execute(cmd, async_=True, timeout=self._timeout, verify_handler=might_fail)
        except (DeviceGone, ChannelClosed) as exc:
            if self.exception is None:
                self.exception = exc
            self._stopping = True
            return False
        self._submitted += 1
        self._inflight += 1
        io.add_done_callback(lambda done, start=start: self._on_done(done, start))
        return True

    def _on_done(self, io: Any, start: int) -> None:
        self._inflight -= 1
        self._record(start, self._is_write(io.command))
        self._outcome(io)
        if not self.returned:
            self._submit()
            if self._inflight == 0 and not self._waiting:
                self._finish()

    def _halt(self) -> None:
        self._stopping = True
        self._waiting = 0

    def _release(self) -> None:
        timer = self._timer
        self._timer = None
        if timer is not None:
            timer.closed = True
            fd = timer.fd
            self.channel.reactor.unregister(timer)  # a no-op when the reactor unregistered it already
            try:
                os.close(fd)
            except OSError:
                pass

    def _idle(self) -> bool:
        return bool(self._t0) and self._inflight == 0

    def _abort(self, exc: BaseException) -> None:
        self._stopping = True
        if self.exception is None:
            self.exception = exc
        if self._inflight and not self.channel.sync_only and not self.channel.closed:
            limit = self._timeout / 1000.0 + 5.0
            try:
                self.channel.reactor.wait_until(lambda: self._inflight == 0, limit)
            except BaseException:
                pass
        self._finish()

    def _snapshot(self, now: float) -> JobStats:
        c, lo, hi, total = self._lat
        hist = list(self._hist) if self._hist is not None else None
        if self.write is None:
            return self._make_stats(now, self._completed, self._submitted, self._short, hist, c, lo, hi, total)
        whist = list(self._whist) if self._whist is not None else None
        return self._mixed_stats(now, (self._completed, self._submitted, self._short), hist, (c, lo, hi, total),
                                 (self._w[0], self._w[1], self._w[2]), whist,
                                 (self._wlat[0], self._wlat[1], self._wlat[2], self._wlat[3]),
                                 (self._rlat[0], self._rlat[1]))

    def _done_count(self) -> int:
        return self._completed


def make_job(channel: "Channel", command: Any, **options: Any) -> Job:
    """The job for ``channel``: the C engine on sg nodes, the IO engine elsewhere."""
    if getattr(channel, "kind", None) == "sg":
        return _SgJob(channel, command, **options)
    return _IoJob(channel, command, **options)
