"""Data-in buffers carved from anonymous mappings (sgpy._binding.BufferSlabs).

Why they exist: a batch of many reads given one ``bytearray`` each left
glibc's heap holding ~420 MB after 100,000 4 KiB IOs were dropped.  A
mapping goes back to the system with the last buffer carved from it.
"""

from __future__ import annotations

import gc

from sgpy._binding import SLAB_BYTES, BufferSlabs, ffi


def _mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def _address(view: memoryview) -> int:
    return int(ffi.cast("uintptr_t", ffi.from_buffer(view)))


def test_buffers_are_zeroed_writable_disjoint_and_their_pointers_are_theirs():
    slabs = BufferSlabs()
    taken = [slabs.take(n) for n in (4096, 512, 4096, 1000)]
    spans = []
    for view, ptr in taken:
        assert not view.readonly and view.c_contiguous
        assert bytes(view) == bytes(view.nbytes)
        assert int(ffi.cast("uintptr_t", ptr)) == _address(view)
        spans.append((_address(view), _address(view) + view.nbytes))
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    # What the kernel writes through the pointer is what the view shows.
    view, ptr = taken[1]
    ffi.memmove(ptr, b"\xab" * 512, 512)
    assert bytes(view) == b"\xab" * 512
    assert bytes(taken[0][0]) == bytes(4096)


def test_a_full_slab_starts_another_and_a_buffer_never_straddles_two():
    slabs = BufferSlabs()
    views = [slabs.take(3000)[0] for _ in range(SLAB_BYTES // 3000 + 2)]
    firsts = {v.obj for v in views}
    assert len(firsts) == 2
    for v in views:
        assert v.nbytes == 3000


def test_dropping_every_buffer_of_a_mapping_unmaps_it_and_one_kept_buffer_keeps_its_data():
    gc.collect()
    before = _mappings()
    slabs = BufferSlabs()
    views = [slabs.take(4096)[0] for _ in range(3 * SLAB_BYTES // 4096)]
    del slabs
    assert _mappings() >= before + 1  # the kernel may merge adjacent anonymous mappings
    keep = views[5]
    keep[:4] = b"sgpy"
    del views
    gc.collect()
    assert bytes(keep[:4]) == b"sgpy"  # its mapping stays while it lives
    del keep
    gc.collect()
    assert _mappings() <= before
