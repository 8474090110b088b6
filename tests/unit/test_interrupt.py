"""Ctrl-C held back while the engine's bookkeeping runs (sgpy/_interrupt.py).

The strongest check raises SIGINT at *every* bytecode instruction of a
protected call (through an opcode tracer) and asserts the call is all or
nothing: either it never began, or every step of it ran before
KeyboardInterrupt came out -- never a half-done state, and never a lost or
doubled interruption.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Iterator, List, Optional

import pytest

from sgpy import _interrupt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from signal_trace import run_with_signal_at  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_sigint() -> Iterator[None]:
    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    del _interrupt.PENDING[:]
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        del _interrupt.PENDING[:]


STEPS = 6


class Book:
    """A toy of the engine's bookkeeping: STEPS statements that must all run, or none."""

    def __init__(self) -> None:
        self.steps: List[int] = []

    @_interrupt.entry
    def record(self) -> int:
        for i in range(STEPS):
            self.steps.append(i)
        return len(self.steps)

    @_interrupt.entry
    def outer(self) -> None:
        self.steps.append(-1)
        self.record()
        self.steps.append(-2)


def _run_with_signal_at(fn: Any, code: Any, at: int, wrapper: bool = True) -> Optional[int]:
    """Run ``fn()`` with SIGINT raised at the ``at``-th instruction executed in frames of ``code``
    (and, with ``wrapper``, of the entry wrapper); return the instruction count if ``at`` was past the end."""
    # Every entry point shares one wrapper code object.
    codes = {code, _interrupt.entry(lambda: None).__code__} if wrapper else {code}
    return run_with_signal_at(fn, codes, at)


def test_a_sigint_anywhere_in_a_protected_call_leaves_it_whole() -> None:
    code = Book.record.__wrapped__.__code__  # type: ignore[attr-defined]
    at = 0
    outcomes = set()
    while True:
        book = Book()
        interrupted = False
        try:
            end = _run_with_signal_at(book.record, code, at)
        except KeyboardInterrupt:
            interrupted = True
            end = None
        assert book.steps in ([], list(range(STEPS))), f"SIGINT at instruction {at} left {book.steps}"
        assert not _interrupt.PENDING, f"SIGINT at instruction {at} left a signal pending"
        if end is not None:
            break  # past the last instruction: no signal was raised
        assert interrupted, f"SIGINT at instruction {at} was lost"
        outcomes.add(len(book.steps))
        at += 1
    assert at > 20  # the whole call was walked, instruction by instruction
    assert outcomes == {0, STEPS}  # both "not begun" (in the wrapper) and "held back to the end" occurred


def test_a_nested_entry_point_leaves_the_interruption_to_the_outer_one() -> None:
    book = Book()
    code = Book.record.__wrapped__.__code__  # type: ignore[attr-defined]
    for at in range(12):
        book = Book()
        with pytest.raises(KeyboardInterrupt):
            _run_with_signal_at(book.outer, code, at, wrapper=False)
        assert book.steps == [-1, *range(STEPS), -2], at


def test_an_interruptible_wait_inside_bookkeeping_is_interrupted_at_once() -> None:
    after: List[str] = []

    def blocking() -> None:
        signal.raise_signal(signal.SIGINT)
        after.append("blocking went on")

    @_interrupt.entry
    def work() -> None:
        after.append("before")
        _interrupt.call_interruptible(blocking)
        after.append("after")

    with pytest.raises(KeyboardInterrupt):
        work()
    assert after == ["before"]


def test_signals_outside_sgpy_are_not_held_back() -> None:
    _interrupt.ensure()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
        for _ in range(10):
            pass
    assert not _interrupt.PENDING


def test_repeated_sigints_while_held_back_are_one_interruption() -> None:
    calls: List[int] = []

    def handler(signum: int, frame: Any) -> None:
        calls.append(signum)

    signal.signal(signal.SIGINT, handler)

    @_interrupt.entry
    def work() -> None:
        for _ in range(5):
            signal.raise_signal(signal.SIGINT)

    work()
    assert calls == [signal.SIGINT]


def test_a_later_sigint_is_not_held_back_for_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_interrupt, "FORCE_AFTER", 0.0)
    seen: List[str] = []

    @_interrupt.entry
    def stuck_callback() -> None:
        signal.raise_signal(signal.SIGINT)
        seen.append("first held back")
        signal.raise_signal(signal.SIGINT)
        seen.append("not reached")

    with pytest.raises(KeyboardInterrupt):
        stuck_callback()
    assert seen == ["first held back"]
    assert not _interrupt.PENDING


def test_the_handler_in_front_calls_the_one_it_replaced() -> None:
    calls: List[int] = []

    class Stop(Exception):
        pass

    def handler(signum: int, frame: Any) -> None:
        calls.append(signum)
        raise Stop("user handler")

    signal.signal(signal.SIGINT, handler)
    steps: List[int] = []

    @_interrupt.entry
    def work() -> None:
        signal.raise_signal(signal.SIGINT)
        steps.extend(range(3))

    with pytest.raises(Stop):
        work()
    assert steps == [0, 1, 2] and calls == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is not handler  # sgpy's stands in front of it

    # A handler set later replaces sgpy's until the next call into sgpy.
    later: List[int] = []
    signal.signal(signal.SIGINT, lambda s, f: later.append(s))
    work()
    assert steps == [0, 1, 2] * 2 and later == [signal.SIGINT]


def test_nothing_is_put_in_front_of_sig_ign() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _interrupt.ensure()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_other_threads_neither_install_nor_deliver() -> None:
    got: List[Any] = []

    @_interrupt.entry
    def work() -> int:
        return 7

    def other() -> None:
        _interrupt.PENDING.append((signal.SIGINT, 0.0))
        got.append(work())
        got.append(signal.getsignal(signal.SIGINT))
        got.append(list(_interrupt.PENDING))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert got[0] == 7
    assert got[1] is signal.default_int_handler  # only the main thread may set handlers
    assert got[2] == [(signal.SIGINT, 0.0)]  # left for the main thread
    with pytest.raises(KeyboardInterrupt):
        work()  # the main thread's next safe point runs it
    assert not _interrupt.PENDING


def test_engine_bookkeeping_is_marked() -> None:
    """The engine's turns, submissions and completions are protected; its blocking points are not."""
    from sgpy.channel import Channel
    from sgpy.io import Io
    from sgpy.reactor import Reactor

    def protected(fn: Any) -> bool:
        return _interrupt.is_protected_at(_FakeFrame(getattr(fn, "__wrapped__", fn).__code__))

    for fn in (Reactor._step, Reactor.poll, Reactor.wait, Reactor.close, Channel.execute, Channel.execute_many,
               Channel.close, Channel.run, Io.wait, Io.add_done_callback):
        assert protected(fn), fn
    assert not protected(Reactor.wait_until)
    assert not protected(_interrupt.call_interruptible)


class _FakeFrame:
    """Just enough of a frame for is_protected_at."""

    def __init__(self, code: Any) -> None:
        self.f_code = code
        self.f_back = None


def test_defer_signal_holds_back_another_signals_raising_handler() -> None:
    class Alarm(Exception):
        pass

    def on_alarm(signum: int, frame: Any) -> None:
        raise Alarm()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        import sgpy

        sgpy.defer_signal(signal.SIGALRM)
        steps: List[int] = []

        @_interrupt.entry
        def work() -> None:
            signal.raise_signal(signal.SIGALRM)
            signal.raise_signal(signal.SIGINT)
            steps.extend(range(3))

        with pytest.raises(Alarm) as info:
            work()
        assert steps == [0, 1, 2]
        assert _interrupt.PENDING and _interrupt.PENDING[0][0] == signal.SIGINT  # the next safe point runs it
        with pytest.raises(KeyboardInterrupt):
            _interrupt.deliver()
        assert info.value is not None
        with pytest.raises(ValueError):
            sgpy.defer_signal(12345)
    finally:
        _interrupt._EXTRA.remove(signal.SIGALRM)
        signal.signal(signal.SIGALRM, old)


@_interrupt.protected
def _inline_record(book: Book) -> int:
    """An entry point doing _interrupt.entry's work itself, as Channel.execute does."""
    handler = _interrupt.getsignal(_interrupt.SIGINT)
    if handler is not _interrupt.HANDLER and callable(handler) or _interrupt.EXTRA:
        _interrupt.ensure()
    try:
        for i in range(STEPS):
            book.steps.append(i)
        return len(book.steps)
    finally:
        if _interrupt.PENDING:
            _interrupt.deliver(2)


def test_an_entry_point_doing_the_wrappers_work_itself_is_whole_and_loses_no_signal() -> None:
    code = _inline_record.__code__
    _inline_record(Book())  # sgpy's handler in front, as after any first call into sgpy
    at = 0
    left_at: List[int] = []
    while True:
        book = Book()
        try:
            end = _run_with_signal_at(lambda: _inline_record(book), code, at, wrapper=False)
        except KeyboardInterrupt:
            end = None
        else:
            if end is None:
                # Raised before the return itself, after PENDING was read: the tracer's handler
                # noted it from a frame above the entry point's.  Without a tracer nothing runs
                # in that frame any more and the caller's frame handles it, as deliver() here.
                assert _interrupt.PENDING, f"SIGINT at instruction {at} was lost"
                left_at.append(at)
                with pytest.raises(KeyboardInterrupt):
                    _interrupt.deliver()
        assert book.steps == list(range(STEPS)), f"SIGINT at instruction {at} left {book.steps}"
        assert not _interrupt.PENDING
        if end is not None:
            break
        at += 1
    assert at > 20 and left_at == [at - 1]


def test_deliver_from_an_entry_points_own_frame_looks_above_it() -> None:
    @_interrupt.protected
    def entry_point(depth: int) -> None:
        _interrupt.deliver(depth)

    _interrupt.ensure()
    _interrupt.PENDING.append((signal.SIGINT, 0.0))
    entry_point(1)  # its own frame is protected: left for an outer safe point
    assert _interrupt.PENDING
    with pytest.raises(KeyboardInterrupt):
        entry_point(2)  # the frames above it are not: run now
    assert not _interrupt.PENDING
