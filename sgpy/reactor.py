"""The reactor: one epoll instance multiplexing every channel's completions.

Each channel owns a small pool of file descriptors open on its device
(:class:`FdState`); the reactor registers each with ``EPOLLIN`` and, when
the kernel has completions ready, reads them back in batches, matches them
to their IOs by ``pack_id`` (never by order), classifies them, runs the verify
handler and the handler chain, and submits whatever the freed slots allow.

The kernel's limits shape the design (drivers/scsi/sg.c): an sg fd accepts at
most ``SG_MAX_QUEUE`` (16) outstanding commands, completed-but-unread ones
included (the 17th ``write()`` fails with EDOM); and only one in-flight
command per fd uses that fd's reserve buffer, the others allocate kernel
pages per command.  So channels queue in user space, spread commands over
their fds (one per fd first), and never let a write see EDOM.

Threading: every state change happens under one re-entrant lock.  In the
default mode the thread that calls :meth:`Reactor.wait` or :meth:`poll`
drives the reactor; :meth:`start` runs it in a background thread instead, and
then waiters sleep on a condition.  Submitting is thread-safe in both modes.
"""

from __future__ import annotations

import errno as _errno
import itertools
import logging
import os
import select
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Set

from sgpy import _binding, _interrupt
from sgpy.constants import ScsiStatus
from sgpy.errors import CdbLengthError, ChannelClosed, CommandTimeout, DeviceGone, InheritedChannel, TaskFailed
from sgpy.io import Header, Input, Io, NoDirectionIo, Output, log_finished
from sgpy.io import log_enabled as _log_enabled
from sgpy.results import VARIABLE_LENGTH as _VARIABLE

if TYPE_CHECKING:  # pragma: no cover
    from sgpy.channel import Channel

__all__ = ["Reactor", "FdState", "default_reactor"]

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLL_GONE = select.EPOLLHUP | select.EPOLLERR
_REC = _binding.REC
_DEBUG = logging.DEBUG
_BATCH = 64
#: Completions an fd's held buffer keeps (one fd carries at most this many of ours).
_HELD = _binding.SG_MAX_QUEUE
_GONE_ERRNOS = frozenset({_errno.ENODEV, _errno.ENXIO, _errno.EBADF, _errno.EIO})
#: The watchdog gives the kernel this long past a command's own timeout
#: before it declares the command lost (the SCSI error handler runs first).
WATCHDOG_GRACE = 30.0
_SWEEP_EVERY = 1.0
_DRIVER_SENSE = 0x08
_CONDITION_MET = int(ScsiStatus.CONDITION_MET)
_lib = _binding.lib
_NULL = _binding.NULL
_unpack = _binding.ffi.unpack
_monotonic = time.monotonic
_tuple_new = tuple.__new__


#: The kernel's data direction of each IO class.
_DXFER_OF = {NoDirectionIo: _binding.SG_DXFER_NONE, Input: _binding.SG_DXFER_FROM_DEV,
             Output: _binding.SG_DXFER_TO_DEV}


class FdState:
    """One sg file descriptor of a channel's pool, and the commands on it."""

    __slots__ = ("fd", "channel", "slots", "slot_ptrs", "ptrs", "free", "inflight", "reserved", "closed",
                 "wants_out", "held", "hstate")

    def __init__(self, fd: int, channel: "Channel") -> None:
        self.fd = fd
        self.channel = channel
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
        # Completions read from the kernel and not yet delivered (Reactor._deliver):
        # hstate[0] records held, hstate[1] of them delivered.
        self.held = _binding.new_records(_HELD)
        self.hstate = _binding.ffi.new("int[2]")

    def __repr__(self) -> str:
        return f"FdState(fd={self.fd}, inflight={len(self.inflight)})"



def _call_callback(fn: Callable[[Any], Any], io: Any, state: List[int]) -> None:
    """Call a done callback, recording in ``state`` that it was entered (1) and returned (2)."""
    state[0] = 1
    fn(io)
    state[0] = 2


_RESUME_AT: Dict[Any, int] = {}


def _resume_offset(code: Any) -> int:
    """Offset of a code object's RESUME instruction (CPython 3.11+; 0 before): the first point where
    an interruption can be raised inside it without any of its own code having run."""
    at = _RESUME_AT.get(code)
    if at is None:
        import dis

        at = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
        _RESUME_AT[code] = at
    return at


def _started(exc: BaseException, fn: Callable[[Any], Any], state: List[int]) -> bool:
    """Whether the callback ``fn`` ran (at least in part) before ``exc`` interrupted its call."""
    if state[0] != 1:
        return state[0] == 2  # not entered (0), or returned and then interrupted (2)
    code = getattr(fn, "__code__", None)
    if code is None:
        return True  # a builtin or callable object: the interruption came after it began
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return tb.tb_lasti > _resume_offset(code)
        tb = tb.tb_next
    return True  # fn returned; the interruption came after the call

class Reactor:
    """One epoll instance for any number of channels; see the module docstring."""

    #: True in a child process that inherited this reactor through fork() (see _inherit).
    _inherited = False

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._fds: Dict[int, Any] = {}  # FdState, or another transport's endpoint
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._records = _binding.new_records(_BATCH)
        self._err = _binding.ffi.new("int *")
        self._ids = itertools.count(1)
        self._channels: List["Channel"] = []
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, _EPOLLIN)
        self._next_sweep = time.monotonic() + _SWEEP_EVERY
        self._outstanding = 0
        self._abandoned: Dict[int, Io] = {}
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self._closed = False
        # fds whose completions may have been read from the kernel and not all
        # delivered (an exception cut a delivery short): their fd is no longer
        # readable, so no epoll event would bring them back.  Every round of
        # waiting delivers them first (_settle).
        self._unsettled: Set[FdState] = set()
        _REACTORS.add(self)

    def __repr__(self) -> str:
        mode = "thread" if self._thread is not None else "caller-driven"
        return f"Reactor(channels={len(self._channels)}, outstanding={self._outstanding}, {mode})"

    # -- registration (channels call these, under the lock) ------------------

    def fileno(self) -> int:
        """The epoll fd: readable when completions are ready (for other event loops)."""
        return self._epoll.fileno()

    def _add_channel(self, channel: "Channel") -> None:
        with self._lock:
            if self._closed:
                raise ChannelClosed("the reactor is closed")
            self._channels.append(channel)

    def _remove_channel(self, channel: "Channel") -> None:
        with self._lock:
            try:
                self._channels.remove(channel)
            except ValueError:
                pass

    def _inherited_error(self) -> InheritedChannel:
        return InheritedChannel(
            f"{self!r} was inherited through fork(): its epoll instance and fds are the parent's; "
            "open the devices again in this process (new channels get a reactor of their own)")

    def _inherit(self) -> None:
        """This process is a child of fork(): make what it inherited unusable, and safe to close.

        After fork() the child's epoll fd refers to the parent's epoll
        instance and its sg fds to the parent's open files (fork(2)): reading
        completions would steal the parent's, and EPOLL_CTL_DEL would take
        the parent's fds off its epoll.  So every use raises
        InheritedChannel, close() closes only the child's copies, and the
        locks are new (a thread of the parent may have held them; the child
        has no such thread).
        """
        self._inherited = True
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._thread = None
        for ch in list(self._channels):
            ch._inherit()

    def _register(self, st: Any, events: int = _EPOLLIN) -> None:
        """Watch ``st.fd``.  ``st`` is an :class:`FdState`, or another transport's
        endpoint: any object with ``fd``, ``channel``, ``inflight`` (id -> Io),
        ``closed``, ``on_events(events) -> int`` (called with the lock held;
        returns completions processed) and ``close_fd()``."""
        if self._inherited:
            raise self._inherited_error()
        self._epoll.register(st.fd, events)
        self._fds[st.fd] = st

    def _modify(self, st: Any, events: int) -> None:
        """Change the epoll events watched for a registered endpoint."""
        self._epoll.modify(st.fd, events)

    def _unregister(self, st: FdState) -> None:
        if self._inherited:
            return  # the epoll instance is the parent's (see _inherit)
        if self._fds.pop(st.fd, None) is not None:
            try:
                self._epoll.unregister(st.fd)
            except (OSError, ValueError):
                pass

    # -- submission ----------------------------------------------------------

    def _submit_batch(self, st: FdState, ios: List[Io]) -> List[Io]:
        """Fill slots for ``ios`` on ``st`` and write them; return the ones not taken.

        Called with the lock held.  IOs the kernel refused for a reason of
        their own (EINVAL, ENOMEM, EFAULT...) are finished with that error;
        EAGAIN/EDOM hand the rest back to the caller's queue; a vanished
        device fails the channel.  An IO whose slot could not be filled is
        never written (the slot would still hold its previous command) and
        fails with CdbLengthError once the batch's bookkeeping is done.
        """
        refused: List[Io] = []
        rest = self._fill_and_write(st, ios, refused)
        for io in refused:
            n = len(io.command.cdb)
            self._fail(io, CdbLengthError(f"{io.command.name}: its CDB has {n} bytes and a submission slot "
                                          f"holds 1 to {_binding.CDB_MAX}; nothing was sent"))
        return rest

    def _fill_and_write(self, st: FdState, ios: List[Io], refused: List[Io]) -> List[Io]:
        """The work of :meth:`_submit_batch`; IOs whose slot cannot be filled go to ``refused``."""
        slot_ptrs = st.slot_ptrs
        ptrs = st.ptrs
        free = st.free
        lib_fill = _lib.sgpy_fill
        null = _NULL
        now = _monotonic()
        ids = self._ids
        inflight = st.inflight
        n = 0
        for io in ios:
            idx = free.pop()
            pid = next(ids) & 0x7FFFFFFF
            cdb = io.command.cdb
            cbuf = io._cbuf
            slot = slot_ptrs[idx]
            if lib_fill(slot, _DXFER_OF[io.__class__], cdb, len(cdb),
                        null if cbuf is None else cbuf, io.length, io.timeout, pid, 0):
                # EINVAL: the CDB does not fit the slot (Channel._make_io
                # refuses such commands first).  The slot is untouched.
                free.append(idx)
                refused.append(io)
                continue
            io._pack_id = pid
            io._slot = idx
            io._fdstate = st
            io._submitted_at = now
            ptrs[n] = slot
            inflight[pid] = io
            n += 1
        if refused:
            ios = [io for io in ios if io._fdstate is st]
        done, err = _binding.submit(st.fd, ptrs, n)
        self.submitted += done
        if done == n:
            return []
        # Take back what was not accepted.
        rest = ios[done:]
        for io in rest:
            st.inflight.pop(io._pack_id, None)
            free.append(io._slot)
            io._slot = -1
            io._fdstate = None
        if err in (_errno.EAGAIN, _errno.EDOM):
            # The kernel is full for now: submit the rest when it says the fd
            # is writable again (sg_poll reports EPOLLOUT below SG_MAX_QUEUE).
            if not st.wants_out:
                st.wants_out = True
                self._epoll.modify(st.fd, _EPOLLIN | _EPOLLOUT)
            return rest
        if err in _GONE_ERRNOS:
            # The IOs not taken are in neither the fd's inflight nor the
            # channel's queue any more: _channel_gone fails them with the rest.
            self._channel_gone(st.channel, err, rest)
            return []
        # The first refused command is at fault: fail it, retry the others.
        bad = rest[0]
        if err == _errno.ENOMEM:
            self._fail(bad, st.channel._no_memory(bad))
        else:
            self._fail(bad, TaskFailed(
                f"the kernel refused the command: {os.strerror(err)} (errno {err})",
                io=bad, command=bad.command))
        return rest[1:]

    def _submit_one(self, st: FdState, io: Io) -> bool:
        """Fill and write one IO on ``st`` in a single C call (lock held).

        The fast path of :meth:`Channel.execute`.  Returns False, with the IO
        untouched, when the kernel did not take it: the caller then queues it
        and the general path (:meth:`_submit_batch`) retries it and handles
        the error.
        """
        idx = st.free.pop()
        pid = next(self._ids) & 0x7FFFFFFF
        cdb = io.command.cdb
        cbuf = io._cbuf
        err = _lib.sgpy_fill_submit(st.fd, st.slot_ptrs[idx], _DXFER_OF[io.__class__], cdb, len(cdb),
                                    _NULL if cbuf is None else cbuf, io.length, io.timeout, pid, 0)
        if err:
            st.free.append(idx)
            return False
        io._pack_id = pid
        io._slot = idx
        io._fdstate = st
        io._submitted_at = _monotonic()
        st.inflight[pid] = io
        self.submitted += 1
        return True

    # -- completion ----------------------------------------------------------

    def _reap_one(self, st: FdState) -> None:
        """Read one completion of ``st`` right after a synchronous submit (lock held).

        A device that answers at once (scsi_debug ``delay=0``, caches)
        completes the command inside ``write()``: one ``read()`` then collects
        it without waiting in epoll.  Nothing ready (EAGAIN) leaves the
        waiting to the caller.
        """
        state = st.hstate
        self._unsettled.add(st)
        n = _lib.sgpy_reap_held(st.fd, st.held, _HELD, 1, state, self._err)
        err = self._err[0]
        if n or state[1] < state[0]:
            self._deliver(st)
            self._unsettled.discard(st)
            if not st.closed and st.channel._queue:
                st.channel._pump()
            return
        self._unsettled.discard(st)
        if err == _errno.EAGAIN or not err:
            return
        if err in _GONE_ERRNOS:
            self._channel_gone(st.channel, err)
        else:
            raise OSError(err, f"read() of completions from {st.channel.path}: {os.strerror(err)}")

    def _reap(self, st: FdState) -> int:
        """Read every ready completion of ``st``; return how many. Lock held."""
        total = 0
        held = st.held
        state = st.hstate
        box = self._err
        reap = _lib.sgpy_reap_held
        inflight = st.inflight
        self._unsettled.add(st)  # before the read: see __init__
        while not st.closed:
            if state[1] < state[0]:
                total += self._deliver(st)  # left by a delivery an exception cut short
            # Read no more than is in flight: once every command of the fd
            # is back, a further read() could only say EAGAIN.  (A shared fd
            # may hold other processes' completions too: with nothing of
            # ours in flight read a full buffer; epoll is level-triggered, so
            # whatever is left wakes it again.)
            want = len(inflight)
            ask = want if 0 < want < _HELD else _HELD
            n = reap(st.fd, held, _HELD, ask, state, box)
            err = box[0]
            if n:
                total += self._deliver(st)
            if err:
                if err in _GONE_ERRNOS:
                    self._channel_gone(st.channel, err)
                elif err != _errno.EAGAIN:
                    raise OSError(err, f"read() of completions from {st.channel.path}: {os.strerror(err)}")
                break
            if n < ask or want:
                break
        self._unsettled.discard(st)
        if total and not st.closed and st.channel._queue:
            st.channel._pump()
        return total

    def _settle(self) -> None:
        """Deliver what fds hold from deliveries an exception cut short (lock held)."""
        for st in list(self._unsettled):
            if not st.closed:
                self._deliver(st)
            self._unsettled.discard(st)
            if not st.closed and st.channel._queue:
                st.channel._pump()

    def _deliver(self, st: FdState) -> int:
        """Hand the completions ``st`` holds to their IOs; return how many.  Lock held.

        Exception-safe, so that a KeyboardInterrupt (or any exception a
        signal handler raises) loses nothing and delivers nothing twice:

        * the records were counted into ``st.held`` by the C reader itself
          (``sgpy_reap_held``), before any Python code could be interrupted;
        * a record counts as delivered only once :meth:`_deliver_one` returned,
          and :meth:`_deliver_one` may be run again on the same record after
          being cut short anywhere (each of its steps checks whether it was
          done);
        * an exception during the batch is kept and raised once every record
          is delivered; one raised between records (CPython runs signal
          handlers between bytecodes) leaves the rest held for the next
          read of this fd, which delivers them first.
        """
        state = st.hstate
        held = st.held
        pending: Optional[BaseException] = None
        retries = 0
        count = 0
        while state[1] < state[0]:
            i = state[1]
            try:
                self._deliver_one(st, held, i * _REC)
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

    def _deliver_one(self, st: FdState, held: Any, base: int) -> None:
        """Deliver the completion record at ``held[base:base + REC]`` (see :meth:`_deliver`).

        Safe to run again after an exception at any point: the header is set
        once, the slot is given back once (``io._slot`` says whether it was),
        the IO is finished once (``io.returned`` and ``io._settled``), and it
        leaves ``inflight`` last, so a re-run still finds it.
        """
        pid = held[base]
        inflight = st.inflight
        io = inflight.get(pid)
        if io is None:
            return  # delivered already, or not ours (another opener of a shared fd)
        idx = io._slot
        if idx >= 0 and io._pack_id == pid:
            if io.hdr is None and not io._abandoned:
                sb = held[base + 4]
                sense = _binding.slot_sense(st.slots, idx, sb) if sb else b""
                io.hdr = _tuple_new(Header, (held[base + 1], held[base + 2], held[base + 3], held[base + 5],
                                             held[base + 6], held[base + 7], held[base + 8], held[base + 9],
                                             sense))
            # The slot is given back after its sense storage was read.  No
            # signal handler runs between these two statements on CPython
            # 3.11+ (it runs at function entry, backward jumps and after
            # calls: Python/ceval.c, CHECK_EVAL_BREAKER), so the slot is
            # freed exactly once.
            io._slot = -1
            st.free.append(idx)
            io._fdstate = None
            if io.__class__ is Output:
                io._let_go()  # read() gave the command back: the kernel is done with its buffer
            if len(inflight) == 1:
                st.channel._idle = st  # the next command goes here (one per fd first)
        if io._abandoned:
            # The watchdog already finished it; the kernel gave it back now.
            self._abandoned.pop(pid, None)
        elif io._pack_id == pid and not io._settled:
            if not io.returned:
                h: Header = io.hdr  # type: ignore[assignment]  # set from the held completion just above
                status = h.status
                if (status == 0 or status == _CONDITION_MET) and h.host_status == 0 \
                        and h.driver_status & ~_DRIVER_SENSE == 0 and not h.sense:
                    cmd = io.command
                    if cmd.name in _VARIABLE or cmd.handlers or io.verify_handler is not None \
                            or cmd.verify_handler is not None or io.error is not None:
                        self._finish(io)
                    else:
                        # _finish and _done for a success with no handler to
                        # run; the counts and the mark are one run of
                        # statements without a call (see above).
                        io.returned = True
                        self._outstanding -= 1
                        st.channel._outstanding -= 1
                        self.completed += 1
                        io._settled = True
                        if _log_enabled(_DEBUG):
                            log_finished(io)
                        if io._callbacks:
                            self._run_callbacks(io)
                else:
                    self._classify(io)
            if io._pack_id == pid and io.returned and not io._settled:
                self._done(io)  # a finish an exception cut short after its handlers
        if io._settled and io._callbacks:
            self._run_callbacks(io)  # callbacks an interruption left: each runs once
        # Last: a re-run must still find the IO until everything above is done.
        inflight.pop(pid, None)

    def _classify(self, io: Io) -> None:
        from sgpy.status import classify

        h = io.hdr
        assert h is not None  # set just before; for type checkers only
        c = classify(status=h.status, host_status=h.host_status, driver_status=h.driver_status,
                     sense=h.sense, resid=h.resid, command=io.command, io=io)
        io.sense = c.sense
        io.error = c.error
        self._finish(io)

    def _finish(self, io: Io) -> None:
        """Run the verify handler and the chain, then mark the IO returned.  Lock held."""
        cmd = io.command
        if io.error is None and cmd.name in _VARIABLE and not io._reissued and io.channel._wants_reissue(io):
            return  # re-submitted with a larger allocation length
        io.returned = True  # handlers see a returned IO, as in the original sgpy
        verify = io.verify_handler or cmd.verify_handler
        interrupted: Optional[BaseException] = None
        try:
            if verify is not None:
                verify(io)
            elif io.error is not None:
                raise io.error
            for h in cmd.handlers:
                h(io)
        except Exception as exc:
            io.exception = exc
        except BaseException as exc:
            # Ctrl-C (or SystemExit) during a handler is not the command's
            # outcome: the chain stops, the IO still finishes with what the
            # device said, and the interruption is raised afterwards.
            interrupted = exc
        self._done(io)
        if interrupted is not None:
            raise interrupted

    def _done(self, io: Io) -> None:
        """Count ``io`` finished (once, whatever calls this again) and run its done callbacks."""
        if io._settled:
            return
        io.returned = True
        self._outstanding -= 1
        io.channel._outstanding -= 1
        if io.exception is not None or io.error is not None:
            self.failed += 1
        else:
            self.completed += 1
        io._settled = True
        if _log_enabled(_DEBUG):
            log_finished(io)
        if io._callbacks:
            self._run_callbacks(io)

    @staticmethod
    def _run_callbacks(io: Io) -> None:
        """Run ``io``'s done callbacks, each exactly once, through interruptions.

        An Exception from a callback is dropped; a KeyboardInterrupt (or
        other BaseException) is raised once every callback ran.  Each
        callback leaves ``io._callbacks`` only as it is called, so an
        interruption before that (at this function's entry: CPython runs
        signal handlers at function entry, backward jumps and after calls,
        Python/ceval.c) leaves it for the next delivery of this IO
        (:meth:`_deliver_one` runs what is left).  An interruption raised at
        the callback's own first instruction, before any of its code ran, is
        told apart from one raised inside it (:func:`_started`) and the
        callback is called again.
        """
        interrupted: Optional[BaseException] = None
        cbs = io._callbacks
        while cbs:
            fn = cbs[0]
            state = [0]
            try:
                del cbs[0]
                _call_callback(fn, io, state)
            except Exception:
                pass
            except BaseException as exc:
                if not _started(exc, fn, state):
                    cbs.insert(0, fn)
                if interrupted is None:
                    interrupted = exc
        io._callbacks = None
        if interrupted is not None:
            raise interrupted

    def _fail(self, io: Io, error: BaseException) -> None:
        """Finish ``io`` with ``error`` without a completion from the kernel (lock held)."""
        if io.returned:
            return
        io.error = error
        self._finish(io)

    def _channel_gone(self, channel: "Channel", err: int, untaken: Sequence[Io] = ()) -> None:
        """The device vanished: fail each of the channel's IOs exactly once, close its fds.

        ``untaken``: IOs of a batch the kernel refused with the device's
        errno, held by the caller only (neither in flight nor queued).
        """
        why = f"{channel.path}: the device is gone ({os.strerror(err)})"
        for io in untaken:
            self._fail(io, DeviceGone(why, io=io, command=io.command, host_status=1))
        if channel._gone:
            return
        channel._gone = True
        # A detaching sg device still hands back the commands it completed
        # (sg.c, sg_read), and device removal waits for outstanding commands:
        # collect those from every fd of the channel before failing the rest.
        interrupted: Optional[BaseException] = None
        for st in list(channel._pool):
            if not st.closed and st.__class__ is FdState and st.inflight:
                try:
                    self._reap(st)
                except OSError:
                    pass
                except BaseException as exc:  # Ctrl-C: fail the rest first, then raise it
                    interrupted = interrupted or exc
        for st in list(channel._pool):
            for pid, io in list(st.inflight.items()):
                st.inflight.pop(pid, None)
                self._abandoned.pop(pid, None)
                if not io.returned:
                    self._fail(io, DeviceGone(why, io=io, command=io.command, host_status=1))
            self._close_fd(st)
        channel._pool.clear()
        while channel._queue:
            io = channel._queue.popleft()
            self._fail(io, DeviceGone(why, io=io, command=io.command, host_status=1))
        if interrupted is not None:
            raise interrupted

    def _close_fd(self, st: Any) -> None:
        if st.closed:
            return
        st.closed = True
        self._unregister(st)
        if st.__class__ is not FdState:
            st.close_fd()
            return
        try:
            os.close(st.fd)
        except OSError:
            pass

    # -- driving -------------------------------------------------------------

    def _dispatch(self, events: Iterable[Any]) -> int:
        """Handle epoll events (lock held); return completions processed."""
        total = 0
        fds = self._fds
        for fd, ev in events:
            st = fds.get(fd)
            if st is None:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                continue
            if st.__class__ is not FdState:
                total += st.on_events(ev)  # another transport (e.g. iSCSI)
                continue
            if ev & _EPOLLIN or ev & _EPOLL_GONE:
                total += self._reap(st)
            if ev & _EPOLLOUT and st.wants_out and not st.closed:
                st.wants_out = False
                self._epoll.modify(fd, _EPOLLIN)
                st.channel._pump()
            if ev & _EPOLL_GONE and not st.closed:
                self._channel_gone(st.channel, _errno.ENODEV)
        return total

    def _sweep(self, now: float) -> None:
        """The watchdog: finish IOs the kernel has held far past their timeout."""
        self._next_sweep = now + _SWEEP_EVERY
        for st in list(self._fds.values()):
            for pid, io in list(st.inflight.items()):
                if io._abandoned or io.returned:
                    continue
                limit = io.timeout / 1000.0 + WATCHDOG_GRACE
                if now - io._submitted_at > limit:
                    io._abandoned = True
                    self._abandoned[pid] = io
                    # Buffers stay referenced by the IO (still in st.inflight)
                    # until the kernel hands the command back.
                    self._fail(io, CommandTimeout(
                        f"no completion within {io.timeout} ms + {WATCHDOG_GRACE:g} s "
                        "(reactor watchdog); its buffers are kept until the kernel returns it",
                        io=io, command=io.command, host_status=3))

    @_interrupt.protected
    def _step(self, events: Iterable[Any]) -> int:
        """One turn of the reactor (lock held): finish deliveries an exception cut short, handle
        ``events``, run the watchdog when due; return completions processed."""
        if self._unsettled:
            self._settle()
        n = self._dispatch(events) if events else 0
        now = _monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        return n

    @_interrupt.entry
    def poll(self) -> int:
        """Process whatever is ready without blocking; return completions processed."""
        if self._inherited:
            raise self._inherited_error()
        if self._thread is not None:
            return 0
        events = self._epoll.poll(0)
        with self._lock:
            return self._step(events)

    @_interrupt.interruptible
    def _wait_until(self, done: Callable[[], bool], timeout: Optional[float]) -> bool:
        """Drive (or, with the background thread, wait for) the reactor until ``done()``.

        Interruptible (sgpy._interrupt): Ctrl-C ends the wait at once; each
        turn's bookkeeping is protected, and a Ctrl-C it held back is raised
        when the turn is over.
        """
        if self._inherited:
            raise self._inherited_error()
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is not None and threading.current_thread() is not self._thread:
            with self._cond:
                while not done():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 1.0)
            return True
        poll = self._epoll.poll
        lock = self._lock
        pending = _interrupt.PENDING
        with lock:
            # Completions an interruption left half delivered (returned, but
            # their done callbacks not yet run) are finished before the IOs
            # count as done.
            self._step(())
            if pending:
                _interrupt.deliver()
            if done():
                return True
        now = _monotonic()
        while True:
            if deadline is not None and now >= deadline:
                return False
            wait = self._next_sweep - now
            if deadline is not None and deadline - now < wait:
                wait = deadline - now
            events = poll(wait if wait > 0.0 else 0.0, _BATCH)
            with lock:
                self._step(events)
                if pending:
                    _interrupt.deliver()
                if done():
                    return True
                now = _monotonic()

    @_interrupt.entry
    def wait(self, ios: Optional[Sequence[Io]] = None, timeout: Optional[float] = None) -> bool:
        """Block until ``ios`` (default: everything outstanding) returned.

        Returns False if ``timeout`` (seconds) passed first; nothing is lost:
        a later wait collects the rest.
        """
        if ios is None:
            return self._wait_until(lambda: self._outstanding == 0, timeout)
        pos = [0]
        seq = list(ios)

        def done() -> bool:
            i = pos[0]
            n = len(seq)
            while i < n and seq[i].returned:
                i += 1
            pos[0] = i
            return i == n

        return self._wait_until(done, timeout)

    # -- background thread ---------------------------------------------------

    def start(self) -> None:
        """Run the reactor in a background thread; waiters then sleep on a condition."""
        if self._inherited:
            raise self._inherited_error()
        with self._lock:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="sgpy-reactor", daemon=True)
            self._thread.start()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the background thread (outstanding IOs stay pending for later waits)."""
        t = self._thread
        if t is None:
            return
        self._stopping = True
        self._wake()
        t.join(timeout)
        self._thread = None

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        epoll = self._epoll
        while not self._stopping:
            events = epoll.poll(_SWEEP_EVERY, _BATCH)
            with self._cond:
                self._step(events)
                self._cond.notify_all()

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None

    # -- introspection and shutdown -----------------------------------------

    def statistics(self) -> Dict[str, Any]:
        """Counters: submitted, completed, failed, in flight, queued, and per channel."""
        with self._lock:
            per = {}
            inflight = 0
            queued = 0
            for ch in self._channels:
                c_in = sum(len(st.inflight) for st in ch._pool)
                c_q = len(ch._queue)
                inflight += c_in
                queued += c_q
                key = ch.path
                n = 2
                while key in per:  # several channels on one device
                    key = f"{ch.path} ({n})"
                    n += 1
                per[key] = {"in_flight": c_in, "queued": c_q, "fds": len(ch._pool),
                            "submitted": ch.submitted, "jobs": len(ch._jobs)}
            return {
                "submitted": self.submitted,
                "completed": self.completed,
                "failed": self.failed,
                "in_flight": inflight,
                "queued": queued,
                "outstanding": self._outstanding,
                "abandoned": len(self._abandoned),
                "channels": per,
            }

    @_interrupt.entry
    def close(self) -> None:
        """Close every channel (draining them) and the epoll fd.  Idempotent."""
        if self._closed:
            return
        for ch in list(self._channels):
            ch.close()
        self.stop()
        self._closed = True
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> "Reactor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Optional[Reactor] = None
_default_lock = threading.Lock()
#: Every reactor of this process, for the fork() handler.
_REACTORS: "weakref.WeakSet[Reactor]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """fork() handler (child side): inherited reactors and channels become unusable
    (InheritedChannel), and the default reactor is a new one for channels the child opens."""
    global _default, _default_lock
    _default_lock = threading.Lock()
    _default = None
    for reactor in list(_REACTORS):
        reactor._inherit()


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_reactor() -> Reactor:
    """The process-wide reactor channels use unless given another."""
    global _default
    r = _default
    if r is None or r._closed:
        with _default_lock:
            if _default is None or _default._closed:
                _default = Reactor()
            r = _default
    return r
