"""The reactor: one epoll instance driving every transport's endpoints, and finishing their IOs.

It knows endpoints and transports only through the contracts of
:mod:`sgpy.transport` (never a channel): it watches each endpoint's fd, calls
its ``on_events`` when the fd is ready (an sg fd reads its completions back
in batches and matches them to their IOs by ``pack_id``, never by order),
runs the watchdog over their IOs in flight, and finishes IOs for them
(:meth:`Reactor.finish`: classification, the verify handler, the handler
chain, the counts, the done callbacks).

Threading: every state change happens under one re-entrant lock.  In the
default mode the thread that calls :meth:`Reactor.wait` or :meth:`poll`
drives the reactor; :meth:`start` runs it in a background thread instead, and
then waiters sleep on a condition.  Submitting is thread-safe in both modes.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set

from sgpy import _interrupt
from sgpy.errors import ChannelClosed, CommandTimeout, InheritedChannel
from sgpy.io import Io, log_cached, log_enabled, log_finished
from sgpy.results import VARIABLE_LENGTH
from sgpy.transport import Endpoint, SgFd, Transport

__all__ = ["Reactor", "FdState", "default_reactor"]

#: The sg endpoint (:class:`sgpy.transport.SgFd`), by its former name.
FdState = SgFd

_EPOLLIN = select.EPOLLIN
_DEBUG = logging.DEBUG
_BATCH = 64
#: The watchdog gives the kernel this long past a command's own timeout
#: before it declares the command lost (the SCSI error handler runs first).
WATCHDOG_GRACE = 30.0
_SWEEP_EVERY = 1.0
_monotonic = time.monotonic




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
    """One epoll instance for any number of channels; see the module docstring.

    Besides its public use (:meth:`wait`, :meth:`poll`, :meth:`start`,
    :meth:`statistics`, :meth:`close`) it offers transports the engine API
    of :class:`sgpy.transport.Completer`: ``lock``, the counters,
    ``register`` / ``modify`` / ``unregister`` / ``close_endpoint``,
    ``finish``, ``fail``, ``classify``, ``done`` and ``wait_until``
    (docs/engine.rst, "Layers").
    """

    #: True in a child process that inherited this reactor through fork() (see _inherit).
    _inherited = False

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._fds: Dict[int, Endpoint] = {}
        #: The one re-entrant lock every state change of the engine happens under.
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        #: The pack ids of submissions (transports use the low 31 bits).
        self.pack_ids: Iterator[int] = itertools.count(1)
        self._transports: List[Transport] = []
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, _EPOLLIN)
        self._next_sweep = time.monotonic() + _SWEEP_EVERY
        #: IOs (and jobs) handed to the engine and not yet finished.
        self.outstanding = 0
        #: IOs the watchdog gave up on whose completion the kernel still owes.
        self.abandoned: Dict[int, Io] = {}
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self._closed = False
        #: Endpoints whose completions may have been read from the kernel and
        #: not all delivered (an exception cut a delivery short): their fd is
        #: no longer readable, so no epoll event would bring them back.
        #: Every round of waiting settles them first (Endpoint.settle).
        self.unsettled: Set[Any] = set()
        _REACTORS.add(self)

    def __repr__(self) -> str:
        mode = "thread" if self._thread is not None else "caller-driven"
        return f"Reactor(channels={len(self._transports)}, outstanding={self.outstanding}, {mode})"

    # -- registration (transports call these, under the lock) ----------------

    def fileno(self) -> int:
        """The epoll fd: readable when completions are ready (for other event loops)."""
        return self._epoll.fileno()

    def add_transport(self, transport: Transport) -> None:
        """Drive ``transport`` (a channel's); ChannelClosed once the reactor is closed."""
        with self.lock:
            if self._closed:
                raise ChannelClosed("the reactor is closed")
            self._transports.append(transport)

    def remove_transport(self, transport: Transport) -> None:
        """Stop driving ``transport`` (its channel closed)."""
        with self.lock:
            try:
                self._transports.remove(transport)
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
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._thread = None
        for t in list(self._transports):
            t.inherit()

    def register(self, ep: Endpoint, events: int = _EPOLLIN) -> None:
        """Watch ``ep.fd`` for ``events``; ``ep`` meets :class:`sgpy.transport.Endpoint`."""
        if self._inherited:
            raise self._inherited_error()
        self._epoll.register(ep.fd, events)
        self._fds[ep.fd] = ep

    def modify(self, ep: Endpoint, events: int) -> None:
        """Change the epoll events watched for a registered endpoint."""
        self._epoll.modify(ep.fd, events)

    def unregister(self, ep: Endpoint) -> None:
        """Stop watching ``ep`` (a no-op when it is not registered)."""
        if self._inherited:
            return  # the epoll instance is the parent's (see _inherit)
        if self._fds.pop(ep.fd, None) is not None:
            try:
                self._epoll.unregister(ep.fd)
            except (OSError, ValueError):
                pass

    def close_endpoint(self, ep: Endpoint) -> None:
        """Unregister ``ep`` and close it, once."""
        if ep.closed:
            return
        ep.closed = True
        self.unregister(ep)
        ep.close()

    def wake(self) -> None:
        """Wake a thread waiting in epoll (a new endpoint wants its first turn)."""
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    # -- finishing IOs (transports call these, under the lock) ---------------

    def classify(self, io: Io) -> None:
        """Decode ``io.hdr`` (status, sense, host and driver status) into ``io.error``, then finish it."""
        from sgpy.status import classify

        h = io.hdr
        assert h is not None  # set just before; for type checkers only
        c = classify(status=h.status, host_status=h.host_status, driver_status=h.driver_status,
                     sense=h.sense, resid=h.resid, command=io.command, io=io)
        io.sense = c.sense
        io.error = c.error
        self.finish(io)

    def finish(self, io: Io) -> None:
        """Run the verify handler and the chain, then mark the IO returned.  Lock held."""
        cmd = io.command
        if io.error is None and cmd.name in VARIABLE_LENGTH and not io._reissued \
                and io.channel.transport.wants_reissue(io):
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
        self.done(io)
        if interrupted is not None:
            raise interrupted

    def done(self, io: Io) -> None:
        """Count ``io`` finished (once, whatever calls this again) and run its done callbacks."""
        if io._settled:
            return
        io.returned = True
        self.outstanding -= 1
        io.channel.transport.outstanding -= 1
        if io.exception is not None or io.error is not None:
            self.failed += 1
        else:
            self.completed += 1
        io._settled = True
        if log_cached(_DEBUG) is not False and log_enabled(_DEBUG):
            log_finished(io)
        if io._callbacks:
            self.run_callbacks(io)

    @staticmethod
    def run_callbacks(io: Io) -> None:
        """Run ``io``'s done callbacks, each exactly once, through interruptions.

        An Exception from a callback is dropped; a KeyboardInterrupt (or
        other BaseException) is raised once every callback ran.  Each
        callback leaves ``io._callbacks`` only as it is called, so an
        interruption before that (at this function's entry: CPython runs
        signal handlers at function entry, backward jumps and after calls,
        Python/ceval.c) leaves it for the next delivery of this IO (the
        endpoint runs what is left).  An interruption raised at the
        callback's own first instruction, before any of its code ran, is
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

    def fail(self, io: Io, error: BaseException) -> None:
        """Finish ``io`` with ``error`` without a completion from the kernel (lock held)."""
        if io.returned:
            return
        io.error = error
        self.finish(io)

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
            total += st.on_events(ev)
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
                    self.abandoned[pid] = io
                    # Buffers stay referenced by the IO (still in st.inflight)
                    # until the kernel hands the command back.
                    self.fail(io, CommandTimeout(
                        f"no completion within {io.timeout} ms + {WATCHDOG_GRACE:g} s "
                        "(reactor watchdog); its buffers are kept until the kernel returns it",
                        io=io, command=io.command, host_status=3))

    @_interrupt.protected
    def _step(self, events: Iterable[Any]) -> int:
        """One turn of the reactor (lock held): finish deliveries an exception cut short, handle
        ``events``, run the watchdog when due; return completions processed."""
        if self.unsettled:
            for ep in list(self.unsettled):
                ep.settle()
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
        with self.lock:
            return self._step(events)

    @_interrupt.interruptible
    def wait_until(self, done: Callable[[], bool], timeout: Optional[float]) -> bool:
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
        lock = self.lock
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
            return self.wait_until(lambda: self.outstanding == 0, timeout)
        pos = [0]
        seq = list(ios)

        def done() -> bool:
            i = pos[0]
            n = len(seq)
            while i < n and seq[i].returned:
                i += 1
            pos[0] = i
            return i == n

        return self.wait_until(done, timeout)

    # -- background thread ---------------------------------------------------

    def start(self) -> None:
        """Run the reactor in a background thread; waiters then sleep on a condition."""
        if self._inherited:
            raise self._inherited_error()
        with self.lock:
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
        self.wake()
        t.join(timeout)
        self._thread = None

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
        with self.lock:
            per: Dict[str, Any] = {}
            inflight = 0
            queued = 0
            for t in self._transports:
                row = t.statistics()
                inflight += row["in_flight"]
                queued += row["queued"]
                key = t.path
                n = 2
                while key in per:  # several channels on one device
                    key = f"{t.path} ({n})"
                    n += 1
                per[key] = row
            return {
                "submitted": self.submitted,
                "completed": self.completed,
                "failed": self.failed,
                "in_flight": inflight,
                "queued": queued,
                "outstanding": self.outstanding,
                "abandoned": len(self.abandoned),
                "channels": per,
            }

    @_interrupt.entry
    def close(self) -> None:
        """Close every channel (draining them) and the epoll fd.  Idempotent."""
        if self._closed:
            return
        for t in list(self._transports):
            t.close_owner()
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
