"""Ctrl-C that waits until the engine's bookkeeping is whole.

CPython runs a Python-level signal handler in the main thread between two
bytecodes (Python/ceval.c, the eval breaker), and the default SIGINT handler
raises KeyboardInterrupt right there.  Raised between two statements that
belong together -- a command written to the kernel and recorded as in
flight, a completion read from the kernel and handed to its IO, a count
taken and given back -- it would lose a completion, deliver one twice, or
leave a channel waiting for ever for a count that never drops.

So, as trio does for its own run loop, sgpy puts a handler of its own in
front of whatever SIGINT handler is installed (:func:`ensure`) and asks,
when the signal comes, where the main thread is:

* inside the engine's bookkeeping -- a *protected* function
  (:func:`protected`, :func:`entry`) is on the stack, nearer the top than
  any *interruptible* one -- it only notes the signal; the engine runs the
  original handler at the next point where nothing is half done
  (:func:`deliver`: the end of the outermost protected call, or the next
  turn of a wait loop);
* anywhere else -- the caller's own code, or a blocking wait the engine
  marks *interruptible* (:func:`interruptible`: epoll, ``SG_IO``, a job's
  C loop) -- it runs the original handler at once, so Ctrl-C still ends a
  wait on a hung device.

Done callbacks, verify handlers and handler chains run inside the
bookkeeping, so Ctrl-C raised there waits until they return.  A second
SIGINT more than :data:`FORCE_AFTER` seconds after a noted one is run at
once even there (a callback that never returns must not make Ctrl-C
useless); what it interrupts is then only as safe as the engine's
exception handling makes it.

SIGINT is always held back; another signal whose handler raises (a
``SIGALRM`` handler raising ``TimeoutError``) is held back once the program
asks for it (``sgpy.defer_signal``), else run where it lands.  The handler sgpy installs calls the one it
replaced: ``signal.getsignal(SIGINT)`` returns sgpy's, and a handler set
later replaces it until the next call into sgpy installs it again in front
of the new one.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, TypeVar

__all__ = ["FORCE_AFTER", "PENDING", "HANDLER", "EXTRA", "SIGINT", "getsignal", "protected", "interruptible",
           "entry", "call_interruptible", "ensure",
           "deliver", "defer_signal", "is_protected_at"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Seconds after which a further SIGINT is no longer held back (see the module docstring).
FORCE_AFTER = 2.0

_PROTECTED: Set[CodeType] = set()
_INTERRUPTIBLE: Set[CodeType] = set()

#: ``[(signum, monotonic time noted)]`` while a SIGINT waits to be run; empty otherwise.
#: A list, so that the check on every exit of an entry point is one truth test.
PENDING: List[Tuple[int, float]] = []

_SIGINT = int(signal.SIGINT)
try:
    # The C function: signal.getsignal wraps it in an enum conversion that
    # costs microseconds, and every call into sgpy asks.
    from _signal import getsignal as _getsignal
except ImportError:  # pragma: no cover - not CPython
    _getsignal = signal.getsignal
#: The handlers sgpy's handler stands in front of, by signal.
_inner: Dict[int, Any] = {}
#: Signals held back besides SIGINT (:func:`defer_signal`).
_EXTRA: List[int] = []


def protected(fn: _F) -> _F:
    """Mark ``fn`` as bookkeeping: SIGINT while it (or anything it calls) runs is held back."""
    _PROTECTED.add(fn.__code__)
    return fn


def interruptible(fn: _F) -> _F:
    """Mark ``fn`` as a blocking point inside bookkeeping: SIGINT there is run at once."""
    _INTERRUPTIBLE.add(fn.__code__)
    return fn


def entry(fn: _F) -> _F:
    """A public entry point: protected, and a SIGINT held back while it ran is run as it returns.

    It also puts sgpy's handler in front of the installed one if it is not
    there (:func:`ensure`): one ``signal.getsignal`` per call.
    """
    protected(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        handler = _getsignal(_SIGINT)
        if handler is not _handler and callable(handler) or _EXTRA:  # SIG_IGN, SIG_DFL: nothing to do
            ensure()
        try:
            return fn(*args, **kwargs)
        finally:
            if PENDING:
                deliver()

    return call  # type: ignore[return-value]  # same signature, see functools.wraps


@interruptible
def call_interruptible(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, with SIGINT run at once while it blocks (``Event.wait`` inside close(), ...)."""
    return fn(*args)


def is_protected_at(frame: Optional[FrameType]) -> bool:
    """Whether a SIGINT arriving with ``frame`` on top would be held back."""
    f = frame
    protected_codes = _PROTECTED
    interruptible_codes = _INTERRUPTIBLE
    while f is not None:
        code = f.f_code
        if code in protected_codes:
            return True
        if code in interruptible_codes:
            return False
        f = f.f_back
    return False


def _run(signum: int, frame: Optional[FrameType]) -> Any:
    """Run the handler a signal is for: the one installed now if sgpy's was replaced, else the wrapped one."""
    current = _getsignal(signum)
    handler = _inner.get(signum) if current is _handler else current
    if callable(handler):
        return handler(signum, frame)
    return None  # SIG_IGN / SIG_DFL installed meanwhile: nothing to run in Python


def _handler(signum: int, frame: Optional[FrameType]) -> Any:
    """sgpy's handler (see the module docstring)."""
    if is_protected_at(frame):
        now = time.monotonic()
        for i, (held, since) in enumerate(PENDING):
            if held == signum:
                if now - since < FORCE_AFTER:
                    return None  # the same signal again while the first waits: one interruption
                del PENDING[i]  # held back too long: run it now (see FORCE_AFTER)
                return _run(signum, frame)
        PENDING.append((signum, now))
        return None
    for i, (held, _since) in enumerate(PENDING):
        if held == signum:
            del PENDING[i]  # this run stands for the one held back
            break
    return _run(signum, frame)


#: sgpy's SIGINT handler, the one :func:`ensure` installs (for entry points doing :func:`entry`'s check themselves).
HANDLER = _handler
#: The signals :func:`defer_signal` holds back besides SIGINT (the list itself: it is appended to).
EXTRA = _EXTRA
#: ``_signal.getsignal``: the installed handler, without :func:`signal.getsignal`'s enum conversion.
getsignal = _getsignal
SIGINT = _SIGINT


def deliver(depth: int = 1) -> None:
    """A safe point: run the signals held back, unless the caller is itself inside bookkeeping.

    Only the main thread runs them (CPython runs signal handlers there
    only); called anywhere else, or with a protected frame above the caller,
    it leaves them for the outer safe point.  If one handler raises, those
    after it stay held for the next safe point.

    ``depth=2``: for a protected entry point that does :func:`entry`'s work
    itself (``Channel.execute``), calling this last from its own frame: the
    frames that decide are those above it.  Such a function begins with the
    check :func:`entry` makes (``getsignal(SIGINT) is not HANDLER and
    callable(...) or EXTRA`` → :func:`ensure`) and ends with ``finally: if
    PENDING: deliver(2)``, calling nothing after reading ``PENDING``: CPython
    runs a signal's handler only at a call, a function's start or a backward
    jump (Python/ceval.c, CHECK_EVAL_BREAKER), so a signal landing after that
    read is handled in the caller's frame, not noted in this one and left.
    """
    if not PENDING or threading.current_thread() is not threading.main_thread():
        return
    frame = sys._getframe(depth)
    if is_protected_at(frame):
        return
    while PENDING:
        signum = PENDING.pop(0)[0]
        _run(signum, frame)


def defer_signal(signum: int) -> None:
    """Hold back ``signum``'s Python handler too while the engine's bookkeeping runs (main thread only).

    For a program whose handler of another signal raises an exception
    (a ``SIGALRM`` handler raising ``TimeoutError``, a ``SIGTERM`` one raising
    ``SystemExit``): like Ctrl-C, it then lands only where nothing is half
    done.  SIGINT is always held back.
    """
    signum = int(signal.Signals(signum))
    if threading.current_thread() is not threading.main_thread():
        raise ValueError("defer_signal() must be called from the main thread (only it may set signal handlers)")
    if signum != _SIGINT and signum not in _EXTRA:
        _EXTRA.append(signum)
    ensure()


def ensure() -> None:
    """Put sgpy's handler in front of the installed SIGINT handler (and those of :func:`defer_signal`).

    Main thread only, idempotent.  Nothing is installed in front of
    ``SIG_IGN`` or ``SIG_DFL`` (no Python code runs for those), nor from
    another thread (only the main thread may set handlers; it installs it
    on its next call into sgpy).
    """
    for signum in (_SIGINT, *_EXTRA):
        current = _getsignal(signum)
        if current is _handler or not callable(current):
            continue
        if threading.current_thread() is not threading.main_thread():
            return
        _inner[signum] = current
        signal.signal(signum, _handler)
