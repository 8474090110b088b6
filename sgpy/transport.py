"""Transports: the queues and endpoints a channel's commands go through, as the reactor sees them.

The engine is layered one way (docs/engine.rst, "Layers")::

    Channel (commands, safety, waiting)  ->  Transport (queue, endpoints)  ->  binding
         \\-> Reactor (epoll, finishing IOs) drives the endpoints through Endpoint

The reactor knows two contracts and nothing of channels:

* :class:`Endpoint`: one watched file descriptor (an sg fd of a pool, an
  iSCSI socket or timer, a job's loop).  The reactor registers it with epoll,
  calls :meth:`Endpoint.on_events` when it is ready and :meth:`Endpoint.settle`
  when a delivery was cut short, reads :attr:`Endpoint.inflight` for its
  watchdog and closes it with :meth:`Endpoint.close`.
* :class:`Transport`: what owns a channel's endpoints, its queue and its
  counts.  The reactor asks it whether a truncated variable-length answer is
  re-issued (:meth:`Transport.wants_reissue`), counts its IOs, closes it when
  the reactor closes and tells it about fork().

Endpoints finish IOs through the reactor's engine API, the :class:`Completer`
contract (``finish``, ``fail``, ``classify``, the counters and the lock),
which this module names but does not import.  :class:`SgPool` is the sg
transport (a pool of sg fds, each an :class:`SgFd` endpoint); the iSCSI
transport and jobs implement the same contracts in their own modules.

The kernel's limits shape the sg transport (drivers/scsi/sg.c): an sg fd
accepts at most ``SG_MAX_QUEUE`` (16) outstanding commands, completed-but-
unread ones included (the 17th ``write()`` fails with EDOM); and only one
in-flight command per fd uses that fd's reserve buffer, the others allocate
kernel pages per command.  So the pool queues in user space, spreads
commands over its fds (one per fd first), and never lets a write see EDOM.
"""

from __future__ import annotations

import collections
import errno as _errno
import logging
import os
import select
from time import monotonic as _monotonic
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Set

from sgpy import _binding
from sgpy.constants import ScsiStatus
from sgpy.errors import CdbLengthError, ChannelClosed, DeviceGone, KernelMemoryError, TaskFailed
from sgpy.io import Header, Input, Io, NoDirectionIo, Output, log_cached, log_enabled, log_finished
from sgpy.results import VARIABLE_LENGTH

try:  # Python 3.8+: typing.Protocol
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore[assignment]

__all__ = ["Completer", "Endpoint", "Transport", "SgFd", "SgPool", "GONE_ERRNOS"]

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLL_GONE = select.EPOLLHUP | select.EPOLLERR
_REC = _binding.REC
_DEBUG = logging.DEBUG
#: Completions an fd's held buffer keeps (one fd carries at most this many of ours).
_HELD = _binding.SG_MAX_QUEUE
#: errnos that mean the device went away (a read, write or ioctl on its fd).
GONE_ERRNOS = frozenset({_errno.ENODEV, _errno.ENXIO, _errno.EBADF, _errno.EIO})
_DRIVER_SENSE = 0x08
_CONDITION_MET = int(ScsiStatus.CONDITION_MET)
_lib = _binding.lib
_NULL = _binding.NULL
_tuple_new = tuple.__new__

#: Clean completions (every field 0 but the duration, in ms) share one header per duration below this.
_CLEAN_MS = _binding.CLEAN_MS
_CLEAN = _binding.CLEAN_HEADERS

#: The kernel's data direction of each IO class.
_DXFER_OF = {NoDirectionIo: _binding.SG_DXFER_NONE, Input: _binding.SG_DXFER_FROM_DEV,
             Output: _binding.SG_DXFER_TO_DEV}


class Completer(Protocol):
    """The reactor's engine API, as endpoints and transports use it (:class:`sgpy.reactor.Reactor`).

    Every method is called with the reactor's ``lock`` held.
    """

    lock: Any
    submitted: int
    completed: int
    failed: int
    #: IOs handed to the engine and not yet finished, over every transport.
    outstanding: int
    #: IOs the watchdog gave up on whose completion the kernel still owes (pack id -> IO).
    abandoned: Dict[int, Io]
    #: Endpoints whose completions were read and not all delivered (see :meth:`Endpoint.settle`).
    unsettled: Set[Any]
    #: The pack ids of submissions (only their low 31 bits are used).
    pack_ids: Iterator[int]

    def finish(self, io: Io) -> None:
        """Run the verify handler and the chain, then count the IO finished."""

    def fail(self, io: Io, error: BaseException) -> None:
        """Finish ``io`` with ``error`` (no completion from the device)."""

    def classify(self, io: Io) -> None:
        """Decode ``io.hdr`` into ``io.sense``/``io.error``, then :meth:`finish` it."""

    def done(self, io: Io) -> None:
        """Count ``io`` finished (once) and run its done callbacks."""

    def run_callbacks(self, io: Io) -> None:
        """Run ``io``'s done callbacks, each exactly once."""

    def register(self, ep: "Endpoint", events: int = _EPOLLIN) -> None:
        """Watch ``ep.fd`` for ``events``."""

    def modify(self, ep: "Endpoint", events: int) -> None:
        """Change the events watched for ``ep``."""

    def unregister(self, ep: "Endpoint") -> None:
        """Stop watching ``ep``."""

    def close_endpoint(self, ep: "Endpoint") -> None:
        """Unregister and close ``ep`` (once)."""

    def add_transport(self, transport: "Transport") -> None:
        """Drive ``transport`` (ChannelClosed when the reactor is closed)."""

    def remove_transport(self, transport: "Transport") -> None:
        """Stop driving ``transport``."""


class Endpoint(Protocol):
    """One file descriptor the reactor watches for a transport."""

    fd: int
    closed: bool
    #: The endpoint's IOs in flight, by pack id (the reactor's watchdog reads it).
    inflight: Dict[int, Io]

    def on_events(self, events: int) -> int:
        """Handle epoll ``events`` (reactor lock held); return completions processed."""

    def settle(self) -> int:
        """Deliver completions an exception left undelivered (reactor lock held); return how many."""

    def close(self) -> None:
        """Release the fd (the reactor unregistered it already)."""


class Transport:
    """A channel's queue, endpoints and counts: the channel as the reactor and its endpoints see it.

    The base class carries synchronous-only channels (block and bsg nodes,
    no endpoint); :class:`SgPool` and the iSCSI transport add endpoints and
    override :meth:`pump`.  The channel hands over what only it knows as
    callables: ``reissue(io) -> bool`` (re-issue a truncated
    variable-length answer), ``on_close()`` (the reactor closes) and
    ``on_inherit()`` (this process is a fork() child).
    """

    def __init__(self, path: str, reactor: Completer, *,
                 reissue: Optional[Callable[[Io], bool]] = None,
                 on_close: Optional[Callable[[], None]] = None,
                 on_inherit: Optional[Callable[[], None]] = None, name: Optional[str] = None) -> None:
        self.path = path
        #: How messages name the channel (its repr).
        self.name = name or path
        self.reactor = reactor
        #: IOs waiting for a place on an endpoint, oldest first.
        self.queue: Deque[Io] = collections.deque()
        #: The endpoints carrying this transport's commands.
        self.endpoints: List[Any] = []
        #: Jobs running on the channel (sgpy.job).
        self.jobs: List[Any] = []
        #: IOs (and jobs) handed over and not yet finished.
        self.outstanding = 0
        #: Commands the kernel (or target) accepted.
        self.submitted = 0
        #: The device vanished: everything was failed, nothing more is sent.
        self.gone = False
        #: The channel's close() began: nothing more is sent.
        self.closing = False
        #: The endpoint the next single command goes to (one per fd first).
        self.idle: Any = None
        #: The most endpoints (fds) the transport opens.
        self.max_fds = 1
        #: Bytes the kernel maps into one request whatever the buffer (the
        #: channel's ``assured_transfer``, once known), named when it refuses more.
        self.assured_transfer: Optional[int] = None
        self._reissue = reissue
        self._on_close = on_close
        self._on_inherit = on_inherit

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, outstanding={self.outstanding}, queued={len(self.queue)})"

    def pump(self) -> None:
        """Move queued IOs onto endpoints (lock held).  Nothing to do without endpoints."""

    def wants_reissue(self, io: Io) -> bool:
        """Whether ``io`` (a successful variable-length answer) was re-issued with a larger length."""
        return self._reissue is not None and self._reissue(io)

    def begin(self, n: int) -> None:
        """Count ``n`` IOs handed over (lock held)."""
        self.reactor.outstanding += n
        self.outstanding += n

    def no_memory(self, io: Io) -> KernelMemoryError:
        """The error for a command the kernel refused with ENOMEM: no room for its buffers."""
        return KernelMemoryError(
            f"{self.path}: the kernel could not allocate the buffers of a {io.length}-byte transfer (ENOMEM; "
            "sg gathers it in pages allocated per command, drivers/scsi/sg.c sg_build_indirect); nothing was "
            "sent: split the transfer into smaller commands", io=io, command=io.command)

    def refused(self, io: Io, err: int) -> BaseException:
        """The error for a command whose ``write()`` the kernel refused with ``err`` (not a vanished device)."""
        if err == _errno.ENOMEM:
            return self.no_memory(io)
        hint = ""
        assured = self.assured_transfer
        if err == _errno.EINVAL and io.length > (assured or 1 << 20):
            # sg maps a transfer into one block-layer request (blk_rq_map_user_io,
            # block/blk-map.c), which can refuse one the queue's sysfs limits allow:
            # scsi_debug under Linux 6.1 states no limit yet refuses 8 MiB + 4 KiB.
            hint = (f"; a {io.length}-byte transfer can be more than the kernel maps into one request "
                    "even within the queue's stated limits: split it into smaller commands")
            if assured:
                hint += f" of at most {assured} bytes (the queue's max_segments pages, which always fit)"
        return TaskFailed(f"the kernel refused the command: {os.strerror(err)} (errno {err}){hint}", io=io,
                          command=io.command)

    def fail_queued(self, why: str) -> None:
        """Fail every IO still queued (never sent) with ChannelClosed (lock held)."""
        q = self.queue
        while q:
            io = q.popleft()
            self.reactor.fail(io, ChannelClosed(f"{why} before {io.command!r} was sent"))

    def lost(self, err: int, untaken: Sequence[Io] = ()) -> None:
        """The device vanished: fail each IO exactly once and close the endpoints (lock held).

        ``untaken``: IOs of a batch the kernel refused with the device's
        errno, held by the caller only (neither in flight nor queued).
        """
        reactor = self.reactor
        why = f"{self.path}: the device is gone ({os.strerror(err)})"
        for io in untaken:
            reactor.fail(io, DeviceGone(why, io=io, command=io.command, host_status=1))
        if self.gone:
            return
        self.gone = True
        interrupted: Optional[BaseException] = None
        try:
            self.collect_before_loss()
        except BaseException as exc:  # Ctrl-C: fail the rest first, then raise it
            interrupted = exc
        for ep in list(self.endpoints):
            for pid, io in list(ep.inflight.items()):
                ep.inflight.pop(pid, None)
                reactor.abandoned.pop(pid, None)
                if not io.returned:
                    reactor.fail(io, DeviceGone(why, io=io, command=io.command, host_status=1))
            reactor.close_endpoint(ep)
        self.endpoints.clear()
        q = self.queue
        while q:
            io = q.popleft()
            reactor.fail(io, DeviceGone(why, io=io, command=io.command, host_status=1))
        if interrupted is not None:
            raise interrupted

    def collect_before_loss(self) -> None:
        """Collect what the vanishing device still hands back, before :meth:`lost` fails the rest."""

    def close_owner(self) -> None:
        """The reactor is closing: close the channel."""
        if self._on_close is not None:
            self._on_close()

    def inherit(self) -> None:
        """This process is a fork() child: the channel becomes unusable (see Channel)."""
        if self._on_inherit is not None:
            self._on_inherit()

    def statistics(self) -> Dict[str, int]:
        """The counters :meth:`sgpy.reactor.Reactor.statistics` shows for this channel."""
        return {"in_flight": sum(len(ep.inflight) for ep in self.endpoints), "queued": len(self.queue),
                "fds": len(self.endpoints), "submitted": self.submitted, "jobs": len(self.jobs)}


class SgFd:
    """One sg file descriptor of a pool, and the commands on it: an :class:`Endpoint`."""

    __slots__ = ("fd", "transport", "slots", "slot_ptrs", "ptrs", "free", "inflight", "reserved", "closed",
                 "wants_out", "held", "hstate", "err")

    def __init__(self, fd: int, transport: "SgPool") -> None:
        self.fd = fd
        self.transport = transport
        self.slots = _binding.new_slots(_binding.SG_MAX_QUEUE)
        # One pointer object per slot, made once: ``slots + i`` would build a
        # new cffi object for every command.
        self.slot_ptrs = [self.slots + i for i in range(_binding.SG_MAX_QUEUE)]
        self.ptrs = _binding.slot_pointers(_binding.SG_MAX_QUEUE)
        self.free: List[int] = list(range(_binding.SG_MAX_QUEUE - 1, -1, -1))
        self.inflight: Dict[int, Io] = {}
        self.reserved = 0
        self.closed = False
        self.wants_out = False
        # Completions read from the kernel and not yet delivered (deliver):
        # hstate[0] records held, hstate[1] of them delivered.
        self.held = _binding.new_records(_HELD)
        self.hstate = _binding.ffi.new("int[2]")
        self.err = _binding.ffi.new("int *")

    def __repr__(self) -> str:
        return f"SgFd(fd={self.fd}, inflight={len(self.inflight)})"

    # -- submission ----------------------------------------------------------

    def submit_batch(self, ios: List[Io]) -> List[Io]:
        """Fill slots for ``ios`` and write them; return the ones not taken (reactor lock held).

        IOs the kernel refused for a reason of their own (EINVAL, ENOMEM,
        EFAULT...) are finished with that error; EAGAIN/EDOM hand the rest
        back to the caller's queue; a vanished device fails the transport.  An
        IO whose slot could not be filled is never written (the slot would
        still hold its previous command) and fails with CdbLengthError once
        the batch's bookkeeping is done.
        """
        refused: List[Io] = []
        rest = self._fill_and_write(ios, refused)
        for io in refused:
            n = len(io.command.cdb)
            self.transport.reactor.fail(io, CdbLengthError(
                f"{io.command.name}: its CDB has {n} bytes and a submission slot holds 1 to "
                f"{_binding.CDB_MAX}; nothing was sent"))
        return rest

    def _fill_and_write(self, ios: List[Io], refused: List[Io]) -> List[Io]:
        """The work of :meth:`submit_batch`; IOs whose slot cannot be filled go to ``refused``."""
        transport = self.transport
        reactor = transport.reactor
        slot_ptrs = self.slot_ptrs
        ptrs = self.ptrs
        free = self.free
        lib_fill = _lib.sgpy_fill
        null = _NULL
        now = _monotonic()
        ids = reactor.pack_ids
        inflight = self.inflight
        n = 0
        for io in ios:
            idx = free.pop()
            pid = next(ids) & 0x7FFFFFFF
            cdb = io.command.cdb
            cbuf = io._cbuf
            slot = slot_ptrs[idx]
            if lib_fill(slot, _DXFER_OF[io.__class__], cdb, len(cdb),
                        null if cbuf is None else cbuf, io.length, io.timeout, pid, 0):
                # EINVAL: the CDB does not fit the slot (Channel refuses such
                # commands first).  The slot is untouched.
                free.append(idx)
                refused.append(io)
                continue
            io._pack_id = pid
            io._slot = idx
            io._fdstate = self
            io._submitted_at = now
            ptrs[n] = slot
            inflight[pid] = io
            n += 1
        if refused:
            ios = [io for io in ios if io._fdstate is self]
        done, err = _binding.submit(self.fd, ptrs, n)
        reactor.submitted += done
        if done == n:
            return []
        # Take back what was not accepted.
        rest = ios[done:]
        for io in rest:
            inflight.pop(io._pack_id, None)
            free.append(io._slot)
            io._slot = -1
            io._fdstate = None
        if err in (_errno.EAGAIN, _errno.EDOM):
            # The kernel is full for now: submit the rest when it says the fd
            # is writable again (sg_poll reports EPOLLOUT below SG_MAX_QUEUE).
            if not self.wants_out:
                self.wants_out = True
                reactor.modify(self, _EPOLLIN | _EPOLLOUT)
            return rest
        if err in GONE_ERRNOS:
            # The IOs not taken are in neither the fd's inflight nor the
            # queue any more: lost() fails them with the rest.
            transport.lost(err, rest)
            return []
        # The first refused command is at fault: fail it, retry the others.
        bad = rest[0]
        reactor.fail(bad, transport.refused(bad, err))
        return rest[1:]

    def submit_one(self, io: Io) -> bool:
        """Fill and write one IO in a single C call (reactor lock held).

        The fast path of :meth:`sgpy.channel.Channel.execute`.  Returns False,
        with the IO untouched, when the kernel did not take it: the caller
        then queues it and the general path (:meth:`submit_batch`) retries it
        and handles the error.
        """
        idx = self.free.pop()
        reactor = self.transport.reactor
        pid = next(reactor.pack_ids) & 0x7FFFFFFF
        cdb = io.command.cdb
        cbuf = io._cbuf
        err = _lib.sgpy_fill_submit(self.fd, self.slot_ptrs[idx], _DXFER_OF[io.__class__], cdb, len(cdb),
                                    _NULL if cbuf is None else cbuf, io.length, io.timeout, pid, 0)
        if err:
            self.free.append(idx)
            return False
        io._pack_id = pid
        io._slot = idx
        io._fdstate = self
        io._submitted_at = _monotonic()
        self.inflight[pid] = io
        reactor.submitted += 1
        return True

    # -- completion ----------------------------------------------------------

    def on_events(self, events: int) -> int:
        """Handle epoll ``events`` on this fd (reactor lock held); return completions processed."""
        total = 0
        if events & _EPOLLIN or events & _EPOLL_GONE:
            total += self.reap()
        if events & _EPOLLOUT and self.wants_out and not self.closed:
            self.wants_out = False
            self.transport.reactor.modify(self, _EPOLLIN)
            self.transport.pump()
        if events & _EPOLL_GONE and not self.closed:
            self.transport.lost(_errno.ENODEV)
        return total

    def reap_one(self) -> None:
        """Read one completion right after a synchronous submit (reactor lock held).

        A device that answers at once (scsi_debug ``delay=0``, caches)
        completes the command inside ``write()``: one ``read()`` then collects
        it without waiting in epoll.  Nothing ready (EAGAIN) leaves the
        waiting to the caller.
        """
        transport = self.transport
        unsettled = transport.reactor.unsettled
        state = self.hstate
        unsettled.add(self)
        n = _lib.sgpy_reap_held(self.fd, self.held, _HELD, 1, state, self.err)
        err = self.err[0]
        if n or state[1] < state[0]:
            self.deliver()
            unsettled.discard(self)
            if not self.closed and transport.queue:
                transport.pump()
            return
        unsettled.discard(self)
        if err == _errno.EAGAIN or not err:
            return
        if err in GONE_ERRNOS:
            transport.lost(err)
        else:
            raise OSError(err, f"read() of completions from {transport.path}: {os.strerror(err)}")

    def reap(self) -> int:
        """Read every ready completion of this fd; return how many (reactor lock held)."""
        transport = self.transport
        unsettled = transport.reactor.unsettled
        total = 0
        held = self.held
        state = self.hstate
        box = self.err
        reap = _lib.sgpy_reap_held
        inflight = self.inflight
        unsettled.add(self)  # before the read: see Reactor.unsettled
        while not self.closed:
            if state[1] < state[0]:
                total += self.deliver()  # left by a delivery an exception cut short
            # Read no more than is in flight: once every command of the fd
            # is back, a further read() could only say EAGAIN.  (A shared fd
            # may hold other processes' completions too: with nothing of
            # ours in flight read a full buffer; epoll is level-triggered, so
            # whatever is left wakes it again.)
            want = len(inflight)
            ask = want if 0 < want < _HELD else _HELD
            n = reap(self.fd, held, _HELD, ask, state, box)
            err = box[0]
            if n:
                total += self.deliver()
            if err:
                if err in GONE_ERRNOS:
                    transport.lost(err)
                elif err != _errno.EAGAIN:
                    raise OSError(err, f"read() of completions from {transport.path}: {os.strerror(err)}")
                break
            if n < ask or want:
                break
        unsettled.discard(self)
        if total and not self.closed and transport.queue:
            transport.pump()
        return total

    def settle(self) -> int:
        """Deliver what this fd holds from a delivery an exception cut short (reactor lock held)."""
        n = 0
        if not self.closed:
            n = self.deliver()
        self.transport.reactor.unsettled.discard(self)
        if not self.closed and self.transport.queue:
            self.transport.pump()
        return n

    def deliver(self) -> int:
        """Hand the completions this fd holds to their IOs; return how many (reactor lock held).

        Exception-safe, so that a KeyboardInterrupt (or any exception a
        signal handler raises) loses nothing and delivers nothing twice:

        * the records were counted into ``held`` by the C reader itself
          (``sgpy_reap_held``), before any Python code could be interrupted;
        * a record counts as delivered only once ``_deliver_one`` returned,
          and ``_deliver_one`` may be run again on the same record after
          being cut short anywhere (each of its steps checks whether it was
          done);
        * an exception during the batch is kept and raised once every record
          is delivered; one raised between records (CPython runs signal
          handlers between bytecodes) leaves the rest held for the next
          read of this fd, which delivers them first.
        """
        state = self.hstate
        held = self.held
        pending: Optional[BaseException] = None
        retries = 0
        count = 0
        while state[1] < state[0]:
            i = state[1]
            try:
                self._deliver_one(held, i * _REC)
                state[1] = i + 1
                count += 1
                retries = 0
            except BaseException as exc:
                if pending is None:
                    pending = exc
                retries += 1
                if retries > 8:
                    raise  # the same record keeps failing: a fault, not an interruption
        if pending is not None:
            raise pending
        return count

    def _deliver_one(self, held: Any, base: int) -> None:
        """Deliver the completion record at ``held[base:base + REC]`` (see :meth:`deliver`).

        Safe to run again after an exception at any point: the header is set
        once, the slot is given back once (``io._slot`` says whether it was),
        the IO is finished once (``io.returned`` and ``io._settled``), and it
        leaves ``inflight`` last, so a re-run still finds it.
        """
        pid = held[base]
        inflight = self.inflight
        io = inflight.get(pid)
        if io is None:
            return  # delivered already, or not ours (another opener of a shared fd)
        clean = held[base + 10]  # a plain success's duration (every other field zero), else -1
        idx = io._slot
        if idx >= 0 and io._pack_id == pid:
            if io.hdr is None and not io._abandoned:
                if clean >= 0:
                    # A clean completion's header differs from another's only by its
                    # duration: one shared (immutable) tuple per duration, not one per IO
                    # (the cached one read inline, as Channel.execute's fast path does).
                    io.hdr = (_CLEAN[clean] if clean < _CLEAN_MS else None) or _binding.clean_header(clean)
                else:
                    sb = held[base + 4]
                    sense = _binding.slot_sense(self.slots, idx, sb) if sb else b""
                    io.hdr = _tuple_new(Header, (held[base + 1], held[base + 2], held[base + 3], held[base + 5],
                                                 held[base + 6], held[base + 7], held[base + 8], held[base + 9],
                                                 sense))
            # The slot is given back after its sense storage was read.  No
            # signal handler runs between these two statements on CPython
            # 3.11+ (it runs at function entry, backward jumps and after
            # calls: Python/ceval.c, CHECK_EVAL_BREAKER), so the slot is
            # freed exactly once.
            io._slot = -1
            self.free.append(idx)
            io._fdstate = None
            if io.__class__ is Output:
                io._let_go()  # read() gave the command back: the kernel is done with its buffer
            else:
                io._cbuf = None  # nor does it write into a read's any more: the C pointer goes
            if len(inflight) == 1:
                self.transport.idle = self  # the next command goes here (one per fd first)
        if io._abandoned:
            # The watchdog already finished it; the kernel gave it back now.
            self.transport.reactor.abandoned.pop(pid, None)
        elif io._pack_id == pid and not io._settled:
            transport = self.transport
            reactor = transport.reactor
            if not io.returned:
                if clean < 0:
                    h: Header = io.hdr  # type: ignore[assignment]  # set from the held completion just above
                    status = h.status
                    success = (status == 0 or status == _CONDITION_MET) and h.host_status == 0 \
                        and h.driver_status & ~_DRIVER_SENSE == 0 and not h.sense
                else:
                    success = True
                if success:
                    cmd = io.command
                    if cmd.name in VARIABLE_LENGTH or cmd.handlers or io.verify_handler is not None \
                            or cmd.verify_handler is not None or io.error is not None:
                        reactor.finish(io)
                    else:
                        # finish and done for a success with no handler to
                        # run; the counts and the mark are one run of
                        # statements without a call (see above).
                        io.returned = True
                        reactor.outstanding -= 1
                        transport.outstanding -= 1
                        reactor.completed += 1
                        io._settled = True
                        if log_cached(_DEBUG) is not False and log_enabled(_DEBUG):
                            log_finished(io)
                        if io._callbacks:
                            reactor.run_callbacks(io)
                else:
                    reactor.classify(io)
            if io._pack_id == pid and io.returned and not io._settled:
                reactor.done(io)  # a finish an exception cut short after its handlers
        if io._settled and io._callbacks:
            self.transport.reactor.run_callbacks(io)  # callbacks an interruption left: each runs once
        # Last: a re-run must still find the IO until everything above is done.
        inflight.pop(pid, None)

    def close(self) -> None:
        """Close the fd (the reactor unregistered it; see :meth:`Completer.close_endpoint`)."""
        try:
            os.close(self.fd)
        except OSError:
            pass


class SgPool(Transport):
    """The sg transport: a pool of up to ``max_fds`` sg fds (:class:`SgFd`) on one device.

    ``open_fd()`` opens one more fd on the device (the channel's, which
    refuses once the channel is closed).
    """

    def __init__(self, path: str, reactor: Completer, *, max_fds: int, open_fd: Callable[[], int],
                 reissue: Optional[Callable[[Io], bool]] = None,
                 on_close: Optional[Callable[[], None]] = None,
                 on_inherit: Optional[Callable[[], None]] = None, name: Optional[str] = None) -> None:
        super().__init__(path, reactor, reissue=reissue, on_close=on_close, on_inherit=on_inherit, name=name)
        self.max_fds = max_fds
        self._open_fd = open_fd
        self.idle: Optional[SgFd] = None

    def add_fd(self, fd: int) -> SgFd:
        """Take ``fd`` into the pool and watch it."""
        st = SgFd(fd, self)
        try:
            st.reserved = _binding.get_reserved_size(fd)
        except OSError:
            st.reserved = 0
        self.endpoints.append(st)
        self.reactor.register(st)
        return st

    def _open_pool_fd(self) -> Optional[SgFd]:
        if self.closing:
            return None  # a closed channel hands out no fd
        try:
            fd = self._open_fd()
        except OSError:
            return None  # the pool just stays smaller (fd limit, permissions...)
        return self.add_fd(fd)

    def idle_fd(self) -> Optional[SgFd]:
        """The fd for one more command (lock held): an idle one, a new one while the pool may grow,
        else the least loaded.

        The fast path of :meth:`sgpy.channel.Channel.execute` when nothing is
        queued: the same choice :meth:`pump` makes for a single command (one
        in flight per fd before any fd takes a second, then an even spread),
        without its bookkeeping.  None means "use the general path".
        """
        st = self.idle
        maxq = _binding.SG_MAX_QUEUE
        # The fd a completion just left idle (see _deliver_one): no slot taken.
        # Its load counted as below, so a done callback's next command goes
        # there without the walk over the pool.
        if st is not None and len(st.free) == maxq and not st.closed and not st.wants_out:
            return st
        pool = self.endpoints
        best = None
        low = maxq
        for st in pool:
            if st.closed or st.wants_out:
                continue
            # The fd's load is what the kernel holds: slots not free.  Not
            # len(inflight), which still counts a command whose completion
            # is being delivered (it leaves inflight last, see _deliver_one):
            # a done callback submitting the next command would find the fd
            # full and queue it.
            n = maxq - len(st.free)
            if not n:
                self.idle = st
                return st
            if n < low:
                best, low = st, n
        if len(pool) < self.max_fds and not self.gone and not self.closing:
            st = self._open_pool_fd()
            if st is None:
                self.max_fds = max(1, len(pool))
                return None
            self.idle = st
            return st
        # Every fd is busy and the pool is full: the least loaded one, as
        # pump's even spread would choose.
        return best

    def pump(self) -> None:
        """Move queued IOs into free fd slots (lock held), spreading them evenly."""
        q = self.queue
        if not q or self.gone:
            return
        if self.closing:
            # Nothing more is sent once close() began: what is still queued
            # (handed back by a full fd while close() drained) was never sent.
            self.fail_queued(f"{self.name} was closed")
            return
        pool = self.endpoints
        maxq = _binding.SG_MAX_QUEUE
        while q:
            loads = [maxq - len(st.free) for st in pool]  # what the kernel holds (see idle_fd)
            total = len(q) + sum(loads)
            want = min(self.max_fds, total)
            while len(pool) < want:
                st = self._open_pool_fd()
                if st is None:
                    self.max_fds = max(1, len(pool))
                    break
                loads.append(0)
            target = min(maxq, -(-total // len(pool)))
            progressed = False
            for st, load in zip(list(pool), loads):
                give = min(target - load, len(q))
                if give <= 0:
                    continue
                batch = [q.popleft() for _ in range(give)]
                self.prepare_reserve(st, batch)
                rest = st.submit_batch(batch)
                self.submitted += give - len(rest)
                if len(rest) < give:
                    progressed = True
                if rest:
                    q.extendleft(reversed(rest))
                    # That fd is full for now (EAGAIN/EDOM); try the next.
                if self.gone:
                    return
                if not q:
                    return
            if not progressed:
                return

    @staticmethod
    def prepare_reserve(st: SgFd, batch: List[Io]) -> None:
        """Grow an idle fd's reserve buffer to fit the largest transfer in ``batch``."""
        if st.inflight:
            return
        st.reserved = _binding.grow_reserve(st.fd, max(io.length for io in batch), st.reserved)

    def collect_before_loss(self) -> None:
        # A detaching sg device still hands back the commands it completed
        # (sg.c, sg_read), and device removal waits for outstanding commands:
        # collect those from every fd before lost() fails the rest.
        interrupted: Optional[BaseException] = None
        for st in list(self.endpoints):
            if not st.closed and st.inflight:
                try:
                    st.reap()
                except OSError:
                    pass
                except BaseException as exc:  # Ctrl-C: collect from the other fds first
                    interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted

