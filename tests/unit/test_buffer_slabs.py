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


def _present_pages(view: memoryview) -> int:
    """How many pages of ``view`` are in memory (/proc/self/pagemap: bit 63 of each page's entry)."""
    import mmap
    import struct

    page = mmap.PAGESIZE
    first = _address(view) // page
    count = -(-view.nbytes // page)
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(first * 8)
        entries = struct.unpack(f"<{count}Q", f.read(count * 8))
    return sum(1 for e in entries if e >> 63)


def _carve(slabs: BufferSlabs, n: int) -> tuple:
    """``take(n)``'s bytes as their own view, with their pointer."""
    mapping, off, ptr = slabs.take(n)
    assert mapping.nbytes == SLAB_BYTES and 0 <= off <= SLAB_BYTES - n
    return mapping[off:off + n], ptr


def test_buffers_are_zeroed_writable_disjoint_and_their_pointers_are_theirs():
    slabs = BufferSlabs()
    taken = [_carve(slabs, n) for n in (4096, 512, 4096, 1000)]
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
    views = [_carve(slabs, 3000)[0] for _ in range(SLAB_BYTES // 3000 + 2)]
    firsts = {v.obj for v in views}
    assert len(firsts) == 2
    for v in views:
        assert v.nbytes == 3000


def test_dropping_every_buffer_of_a_mapping_unmaps_it_and_one_kept_buffer_keeps_its_data():
    gc.collect()
    before = _mappings()
    slabs = BufferSlabs()
    views = [_carve(slabs, 4096)[0] for _ in range(3 * SLAB_BYTES // 4096)]
    del slabs
    gc.collect()
    assert _mappings() >= before + 1  # the kernel may merge adjacent anonymous mappings
    keep = views[5]
    keep[:4] = b"sgpy"
    del views
    gc.collect()
    assert bytes(keep[:4]) == b"sgpy"  # its mapping stays while it lives
    del keep
    gc.collect()
    assert _mappings() <= before


def test_expected_bytes_size_the_mappings_and_past_them_mappings_are_full_size():
    import mmap

    slabs = BufferSlabs(expect=3 * 4096 + 100)
    views = [slabs.take(4096)[0] for _ in range(3)]
    assert len({id(v) for v in views}) == 1  # one mapping for the expected bytes
    assert views[0].nbytes == -(-(3 * 4096 + 100) // mmap.PAGESIZE) * mmap.PAGESIZE
    assert _present_pages(views[0]) * mmap.PAGESIZE == views[0].nbytes  # faulted in when made
    small = slabs.take(100)
    assert small[0] is views[0] and small[1] == 3 * 4096
    past, off, _ = slabs.take(4096)  # more than expected: a full-size mapping, faulted in when made
    assert past.nbytes == SLAB_BYTES and off == 0
    assert _present_pages(past) == SLAB_BYTES // mmap.PAGESIZE
    unknown = BufferSlabs()  # nothing expected: the first mapping is faulted in as used, the next at once
    first = unknown.take(SLAB_BYTES - 4096)[0]
    assert _present_pages(first) == 0
    second = unknown.take(8192)[0]
    assert second is not first and _present_pages(second) == SLAB_BYTES // mmap.PAGESIZE
    big = BufferSlabs(expect=3 * SLAB_BYTES)
    assert [big.take(SLAB_BYTES)[0].nbytes for _ in range(3)] == [SLAB_BYTES] * 3


def test_bad_sizes_are_refused_before_anything_is_taken():
    import pytest

    with pytest.raises(ValueError, match="expect must be"):
        BufferSlabs(expect=-1)
    slabs = BufferSlabs()
    for n in (0, -5, SLAB_BYTES + 1):
        with pytest.raises(ValueError, match="1 to"):
            slabs.take(n)
    assert slabs.take(10)[1] == 0
