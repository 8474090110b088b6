"""IO objects: one execution of a command on a channel.

An IO is created by :meth:`sgpy.channel.Channel.execute` (or
``execute_many``), travels through the reactor, and is finished exactly once:
``returned`` becomes True, ``hdr`` holds the completion's output fields,
``error`` the device's failure (if any) and ``exception`` what :meth:`wait`
raises (the verify handler's verdict, or a handler's own exception).

The three classes only differ in their data direction, as in the original
sgpy: :class:`NoDirectionIo`, :class:`Input` (data from the device) and
:class:`Output` (data to the device).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Generic, List, Optional, TypeVar

from sgpy import _interrupt
from sgpy._binding import Header
from sgpy.constants import DEFAULT_TIMEOUT_MS, ScsiStatus

_getsignal = _interrupt.getsignal
_SIGINT = _interrupt.SIGINT
_SGPY_HANDLER = _interrupt.HANDLER
_EXTRA_SIGNALS = _interrupt.EXTRA

if TYPE_CHECKING:  # pragma: no cover
    from sgpy.channel import Channel

__all__ = ["Header", "Io", "new_io", "UNSET", "NoDirectionIo", "Input", "Output", "LOG", "log_enabled", "log_cached",
           "log_finished", "raise_first_failure"]

#: The logger of finished commands: one DEBUG record per IO as it returns
#: (sync or async, any transport), the way sg3_utils' ``-v`` prints the CDB,
#: the status, the sense and the duration.  The record's ``sgpy_io``
#: attribute is the IO itself, for handlers that want the fields; the message
#: is formatted only when a handler emits it.  Disabled (the default: no
#: handler at DEBUG), it costs the engine one ``isEnabledFor`` per command.
LOG = logging.getLogger("sgpy.command")
#: ``log_enabled(logging.DEBUG)``: whether a finished command is logged (Logger.isEnabledFor, bound).
log_enabled = LOG.isEnabledFor
#: ``log_cached(logging.DEBUG)``: the logger's own cached answer of
#: :data:`log_enabled` -- True, False, or None before it was asked since the
#: last change of levels.  The cache is ``logging.Logger._cache``, which
#: logging clears in place whenever a level changes (Lib/logging/__init__.py,
#: ``Manager._clear_cache``).  Hot paths test ``log_cached(DEBUG) is not
#: False and log_enabled(DEBUG)``: one C call while logging is off, against a
#: Python call; a stale True only costs a ``LOG.debug`` that checks again.
log_cached = getattr(LOG, "_cache", {}).get
_DEBUG = logging.DEBUG


class _Finished:
    """The message of one finished command's log record, built only when emitted."""

    __slots__ = ("io",)

    def __init__(self, io: "Io[Any]") -> None:
        self.io = io

    def __str__(self) -> str:
        io = self.io
        cmd = io.command
        try:
            cdb = " ".join(f"{b:02x}" for b in cmd.cdb)
        except Exception:  # an unresolved command cannot have been sent; say so rather than fail the log
            cdb = "?"
        h = io.hdr
        if h is None:
            outcome = f"no completion: {io.error}" if io.error is not None else "no completion"
            moved = ""
        else:
            try:
                status = ScsiStatus(h.status).name.replace("_", " ")
            except ValueError:
                status = f"status {h.status:02x}h"
            outcome = status
            if io.sense is not None:
                outcome += f", sense: {io.sense}"
            elif io.error is not None:
                outcome += f": {io.error}"
            if io.error is None or getattr(io.error, "recovered", False):
                moved = f", {max(0, io.length - max(h.resid, 0))} of {io.length} bytes, {h.duration} ms"
            else:  # a failed command's resid does not say what moved (drivers may leave it 0)
                moved = f", resid {h.resid}, {h.duration} ms"
        verdict = "" if io.exception is None or io.exception is io.error else f"; raises {io.exception!r}"
        return f"{io.channel.path}: {cmd.name} [{cdb}] -> {outcome}{moved}{verdict}"


def log_finished(io: "Io[Any]") -> None:
    """Emit ``io``'s DEBUG record on :data:`LOG` (callers check :func:`log_enabled` first)."""
    LOG.debug("%s", _Finished(io), extra={"sgpy_io": io})


#: The type of ``io.result``: the parsed answer of the command the IO carries.
R = TypeVar("R", covariant=True)


class Io(Generic[R]):
    """One command's execution; see the module docstring.

    Attributes: ``command``, ``channel``, ``timeout`` (ms), ``returned``,
    ``data_buf`` (a ``memoryview`` of the data buffer — writable for
    :class:`Input`; ``.tobytes()`` copies it out), ``hdr`` (:class:`Header`, None until
    returned), ``error`` (the device failure as a
    :class:`sgpy.errors.TaskFailed`, or None), ``sense`` (decoded sense data,
    when there was sense), ``exception`` (raised by :meth:`wait`: None when
    the verify handler accepted the outcome and every handler ran).
    """

    __slots__ = (
        "command",
        "channel",
        "timeout",
        "returned",
        "_data",
        "_off",
        "hdr",
        "error",
        "sense",
        "exception",
        "verify_handler",
        "length",
        "_cbuf",
        "_pack_id",
        "_fdstate",
        "_slot",
        "_submitted_at",
        "_abandoned",
        "_reissued",
        "_result",
        "_callbacks",
        "_settled",
        "__weakref__",
    )

    # The fields, as new_io sets them (annotations only: the storage is the slots above).
    command: Any
    channel: "Channel"
    timeout: int
    returned: bool
    # data_buf's storage: the buffer itself when _off is -1; otherwise a
    # buffer whose bytes [_off, _off + length) are this IO's, its view made
    # on first access (see data_buf).
    _data: Any
    _off: int
    hdr: Optional[Header]
    error: Optional[BaseException]
    sense: Any
    exception: Optional[BaseException]
    verify_handler: Any
    length: int
    _cbuf: Any
    _pack_id: int
    _fdstate: Any
    _slot: int
    _submitted_at: float
    _abandoned: bool
    _reissued: bool
    _result: Any
    _callbacks: Any
    _settled: bool

    def __repr__(self) -> str:
        return f"{type(self).__name__}(timeout={self.timeout}, returned={self.returned})"

    @property
    def data_buf(self) -> Any:
        """A ``memoryview`` of the data buffer (None when the command moves no data).

        Made on first access: a batch's reads share their buffer memory (a
        mapping carved into many buffers, see
        :class:`sgpy._binding.BufferSlabs`), and an IO holds that memory and
        its offset in it until someone looks, rather than a view of its own
        (184 bytes each, the larger part of a finished read's Python memory).
        The same view is returned from then on.
        """
        off = self._off
        base = self._data
        if off < 0:
            return base
        n = self.length
        view = memoryview(base)
        if off or view.nbytes != n:
            view = view[off:off + n]
        # Made lazily by two threads at once: the second keeps the first's.
        # Nothing between the test and the two stores lets another thread run
        # (no call: CPython 3.11+ switches threads only where it checks its
        # eval breaker, Python/ceval.c), so a reader sees either the lazy
        # pair or the finished one.
        if self._off >= 0:
            self._data = view
            self._off = -1
            return view
        return self._data

    @data_buf.setter
    def data_buf(self, value: Any) -> None:
        self._data = value
        self._off = -1

    # -- waiting -----------------------------------------------------------

    @_interrupt.entry
    def poll(self) -> bool:
        """Make progress without blocking; True once this IO has returned."""
        if not self.returned:
            self.channel.reactor.poll()
        return self.returned

    @_interrupt.entry
    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until this IO returns (``timeout`` in seconds), then raise its exception if any.

        Raises :class:`TimeoutError` when ``timeout`` passes first; the IO
        stays pending and a later wait can still collect it.
        """
        if not self.returned and not self.channel.reactor.wait([self], timeout):
            raise TimeoutError(f"{self!r} did not return within {timeout} s")
        if self.exception is not None:
            raise self.exception

    @_interrupt.protected
    def add_done_callback(self, fn: Any) -> None:
        """Call ``fn(io)`` once this IO has returned (at once if it already has).

        For event-loop bridges (:mod:`sgpy.aio`): it runs on the thread that
        drives the reactor, after the verify handler and the handler chain,
        with the reactor's lock held; exceptions it raises are ignored.
        Unlike the command's handlers, it belongs to this execution only.
        """
        # The entry point's work (_interrupt.entry) done inline, as in
        # Channel.execute: this is called once per command in callback chains.
        handler = _getsignal(_SIGINT)
        if handler is not _SGPY_HANDLER and callable(handler) or _EXTRA_SIGNALS:
            _interrupt.ensure()
        try:
            # Without the reactor's lock: the IO is counted finished
            # (``_settled``) before its callbacks are read (Reactor.done,
            # SgFd._deliver_one), and nothing between the test below and the
            # list being stored or appended to lets another thread run (no
            # call before it: CPython 3.11+ switches threads only where it
            # checks its eval breaker, Python/ceval.c).  So ``fn`` is either
            # in the list before the finishing thread reads it, or sees the
            # IO settled and runs here; never lost, never run twice, never
            # before the verify handler and the chain are done.
            if not self._settled:
                cbs = self._callbacks
                if cbs is None:
                    self._callbacks = [fn]
                else:
                    cbs.append(fn)
                return
            try:
                fn(self)
            except Exception:
                pass
        finally:
            if _interrupt.PENDING:
                _interrupt.deliver(2)

    def _let_go(self) -> None:
        """The kernel (or libiscsi) gave this command back: release the data-out buffer's export.

        While a command is in flight its IO holds a ``memoryview`` of the
        caller's ``data=`` (and a C pointer into it), so a ``bytearray``
        cannot be resized under the kernel.  Once the transport is done with
        the buffer the export goes; ``data_buf`` then refers to the object
        itself, which the caller may change again.  Data-in buffers are the
        IO's own and stay as they are.
        """
        self._cbuf = None
        view = self._data  # an Output's is never lazy
        if type(view) is memoryview:
            data = getattr(self.command, "data", None)
            self._data = data if data is not None else view.obj
            try:
                view.release()
            except BufferError:  # someone took a view of the view: it goes when they drop it
                pass

    # -- results -----------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the IO returned and :meth:`wait` would not raise."""
        return self.returned and self.exception is None

    @property
    def data(self) -> bytes:
        """The data that moved: ``dxfer_len - resid`` bytes (b"" for no-data commands)."""
        off = self._off
        buf = self._data  # read as data_buf would be, without keeping a view made for this copy
        if buf is None:
            return b""
        n = self.length
        if self.hdr is not None and self.hdr.resid > 0:
            n = max(0, n - self.hdr.resid)
        if off >= 0:
            return memoryview(buf)[off:off + n].tobytes()
        return buf[:n].tobytes() if type(buf) is memoryview else bytes(memoryview(buf)[:n])

    @property
    def result(self) -> Optional[R]:
        """The parsed answer, when the command has a parser (INQUIRY, READ CAPACITY...).

        None for commands without one, and before the IO returned
        successfully.  Parsed on first access.
        """
        if self._result is _UNSET:
            if not self.returned or self.error is not None and not getattr(self.error, "recovered", False):
                return None
            from sgpy.results import parse_result

            self._result = parse_result(self.command, self.data)
        return self._result


def new_io(cls: "type[Io[Any]]", command: Any, channel: "Channel", length: int, data_buf: Any,
           timeout: int = DEFAULT_TIMEOUT_MS, verify_handler: Any = None) -> "Io[Any]":
    """A new, unsent IO of class ``cls`` (:class:`NoDirectionIo`, :class:`Input` or :class:`Output`).

    Channels make IOs (:meth:`sgpy.channel.Channel.execute`); this is how.
    A function rather than ``__init__``: ``cls()`` with the inherited
    ``object.__init__`` and the fields stored here costs a third less than a
    Python ``__init__`` (the class call passes through ``slot_tp_init``), on
    the path every command takes.
    """
    io = cls()
    io.command = command
    io.channel = channel
    io.timeout = timeout
    io.returned = False
    io.length = length
    io._data = data_buf
    io._off = -1
    io.hdr = None
    io.error = None
    io.sense = None
    io.exception = None
    io.verify_handler = verify_handler
    io._cbuf = None
    io._pack_id = 0
    io._fdstate = None
    io._slot = -1
    io._submitted_at = 0.0
    io._abandoned = False
    io._reissued = False
    io._result = _UNSET
    io._callbacks = None
    io._settled = False  # counted as finished by the reactor (Reactor.done), exactly once
    return io


def raise_first_failure(ios: "List[Io[Any]]") -> None:
    """Raise the exception of the first IO of a batch that has one, with the batch as its ``batch``.

    What a synchronous ``execute_many`` (and its asyncio twin) does once
    every IO has returned, so the caller can look at the others.
    """
    for io in ios:
        if io.exception is not None:
            exc = io.exception
            try:
                exc.batch = ios  # type: ignore[attr-defined]
            except AttributeError:
                pass
            raise exc


class NoDirectionIo(Io[R]):
    """An IO of a command that moves no data (TEST UNIT READY, RESERVE...)."""

    __slots__ = ()


class Input(Io[R]):
    """An IO of a command that reads data from the device (``data_buf`` is a bytearray)."""

    __slots__ = ()


class Output(Io[R]):
    """An IO of a command that sends data to the device."""

    __slots__ = ()


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()
#: ``io._result`` before the answer is parsed (for code that makes IOs: :func:`new_io`).
UNSET = _UNSET
