"""``Io.data_buf``: a read's view made when it is first asked for.

A finished read of a batch holds the mapping its buffer was carved from and
its offset there (``sgpy._binding.BufferSlabs``), not a view of its own; the
view is made on first access and kept.  These tests hold the property to
what a plain attribute gave: the IO's bytes exactly, writable for a read,
the same object on every access, whatever the threads do.
"""

from __future__ import annotations

import sys
import threading

import pytest

from sgpy import _binding
from sgpy.io import Input, NoDirectionIo, Output, new_io


def _lazy_read(slabs: _binding.BufferSlabs, n: int, fill: bytes) -> Input:
    mapping, off, ptr = slabs.take(n)
    _binding.ffi.memmove(ptr, fill * (n // len(fill)), n)  # as the kernel writes through the pointer
    io = new_io(Input, None, None, n, mapping)  # type: ignore[arg-type]
    io._off = off
    return io


def test_the_view_is_the_ios_bytes_writable_and_the_same_object_each_time():
    slabs = _binding.BufferSlabs()
    ios = [_lazy_read(slabs, 4096, bytes([i])) for i in range(5)]
    for i, io in enumerate(ios):
        view = io.data_buf
        assert type(view) is memoryview and view.nbytes == 4096 and not view.readonly
        assert bytes(view) == bytes([i]) * 4096
        assert io.data_buf is view
    # Writable in place, and only its own bytes: the neighbours are untouched.
    ios[2].data_buf[:4] = b"sgpy"
    assert ios[2].data[:4] == b"sgpy" and ios[1].data == b"\x01" * 4096 and ios[3].data == b"\x03" * 4096


def test_data_copies_without_keeping_a_view_and_honours_resid():
    slabs = _binding.BufferSlabs()
    io = _lazy_read(slabs, 1024, b"ab")
    assert io.data == b"ab" * 512
    assert io._off >= 0  # still lazy: the copy made no view to keep
    io.hdr = _binding.clean_header(1)._replace(resid=24)
    assert io.data == (b"ab" * 512)[:1000]


def test_setting_data_buf_replaces_the_lazy_buffer():
    slabs = _binding.BufferSlabs()
    io = _lazy_read(slabs, 4096, b"x")
    other = memoryview(bytearray(b"y" * 4096))
    io.data_buf = other
    assert io.data_buf is other and io.data == b"y" * 4096


def test_a_bytearray_of_the_exact_length_is_viewed_whole():
    buf = bytearray(b"z" * 512)
    io = new_io(Input, None, None, 512, buf)  # type: ignore[arg-type]
    io._off = 0
    view = io.data_buf
    assert view.obj is buf and view.nbytes == 512
    view[0:1] = b"A"
    assert buf[0:1] == b"A"


@pytest.mark.parametrize("cls", [NoDirectionIo, Output])
def test_ios_that_are_not_lazy_return_what_they_hold(cls):
    data = None if cls is NoDirectionIo else memoryview(b"payload")
    io = new_io(cls, None, None, 0 if data is None else 7, data)  # type: ignore[arg-type]
    assert io.data_buf is data
    assert io.data == (b"" if data is None else b"payload")


def test_threads_asking_at_once_all_see_the_ios_bytes_and_one_view_is_kept():
    # A thread switch on every few bytecodes: the lazy pair (buffer, offset) must never be seen
    # half-replaced, which would give a view of the wrong bytes.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        slabs = _binding.BufferSlabs()
        ios = [_lazy_read(slabs, 512, bytes([i % 251])) for i in range(2000)]
        seen: list = [[] for _ in range(4)]
        start = threading.Barrier(4)

        def reader(k: int) -> None:
            start.wait()
            for io in ios:
                seen[k].append(io.data_buf)

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    for i, io in enumerate(ios):
        kept = io.data_buf
        assert io._off == -1 and io.data_buf is kept
        want = bytes([i % 251]) * 512
        for k in range(4):
            got = seen[k][i]
            assert got.nbytes == 512 and bytes(got) == want


def test_another_thread_asking_at_any_switch_point_of_the_first_sees_the_ios_bytes():
    # CPython hands the GIL to another thread only where it checks its eval breaker: a function's
    # start, a backward jump, the end of a call (Python/ceval.c).  At each such point of the
    # getter, another reader runs (from the tracer, as a thread switched to there would): each
    # must get the IO's bytes, and the first must end with the view that is kept.
    import dis

    getter = Input.data_buf.fget  # type: ignore[attr-defined]
    switch_after = {i.offset for i in dis.get_instructions(getter)
                    if i.opname.startswith("CALL") or i.opname == "JUMP_BACKWARD"}
    points = 0
    for k in range(40):  # one switch point per run, further each run
        slabs = _binding.BufferSlabs()
        slabs.take(512 * (k + 1))  # a non-zero offset
        io = _lazy_read(slabs, 512, b"q")
        seen = []
        hit = [False]
        state = {"count": 0, "last": -1}

        def local(frame, event, arg):
            if event == "opcode":
                if (state["last"] in switch_after or state["last"] == -1) and not hit[0]:
                    if state["count"] == k:
                        hit[0] = True
                        sys.settrace(None)
                        frame.f_trace = None
                        seen.append(io.data_buf)  # the other thread
                    state["count"] += 1
                state["last"] = frame.f_lasti
            return local

        def global_(frame, event, arg):
            if frame.f_code is getter.__code__ and not hit[0]:
                frame.f_trace_opcodes = True
                return local
            return None

        sys.settrace(global_)
        try:
            first = io.data_buf
        finally:
            sys.settrace(None)
        if not hit[0]:
            break
        points += 1
        assert bytes(first) == b"q" * 512 and first.nbytes == 512
        assert bytes(seen[0]) == b"q" * 512 and seen[0].nbytes == 512
        assert io.data_buf is first
    assert points >= 2  # the start and the calls of the getter were visited
