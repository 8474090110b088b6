"""The one module that touches the compiled extension ``sgpy._sgffi``.

Everything else in sgpy reaches the kernel through the functions here.  The
kernel ABI (``struct sg_io_hdr``'s layout, ioctl numbers, ``SG_*`` flags)
comes from ``<scsi/sg.h>`` through cffi; this module only re-exports the
values and turns error returns into :class:`OSError` with the errno.
"""

from __future__ import annotations

import errno as _errno
import mmap
import os
import struct
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

from sgpy.constants import Direction

try:
    from sgpy._sgffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "sgpy's C extension sgpy._sgffi is not built: install sgpy with "
        "'pip install sgpy-scsi' (from a checkout: 'pip install -e .') so that it is compiled"
    ) from exc

__all__ = [
    "ffi",
    "SG_DXFER_NONE",
    "DXFER",
    "RESERVE_CAP",
    "grow_reserve",
    "SG_DXFER_TO_DEV",
    "SG_DXFER_FROM_DEV",
    "SG_MAX_QUEUE",
    "SENSE_MAX",
    "CDB_MAX",
    "ScsiId",
    "Header",
    "new_slots",
    "new_headers",
    "slot_pointers",
    "fill",
    "submit",
    "reap",
    "sg_io",
    "REC",
    "new_records",
    "reap_packed",
    "unpack",
    "slot_sense",
    "slot_address",
    "buffer_pointer",
    "BufferSlabs",
    "SLAB_BYTES",
    "ioctl_int",
    "version_num",
    "get_reserved_size",
    "set_reserved_size",
    "get_scsi_id",
    "num_waiting",
    "set_force_pack_id",
    "set_keep_orphan",
    "sg_tablesize",
    "scsi_reset",
    "SyncCaller",
    "sync_plain",
    "CLEAN_MS",
    "CLEAN_HEADERS",
    "clean_header",
    "JobCore",
    "ManyRun",
    "MANY_FDS_MAX",
    "MANY_SLICE_MS",
    "MANY_UNSENT",
    "MANY_INFLIGHT",
    "MANY_PARKED",
    "many_descriptor",
    "new_flag",
    "new_pointers",
    "timer_new",
    "timer_arm",
    "timer_clear",
]

SG_DXFER_NONE: int = lib.SG_DXFER_NONE
SG_DXFER_TO_DEV: int = lib.SG_DXFER_TO_DEV
SG_DXFER_FROM_DEV: int = lib.SG_DXFER_FROM_DEV
SG_DXFER_TO_FROM_DEV: int = lib.SG_DXFER_TO_FROM_DEV
SG_FLAG_DIRECT_IO: int = lib.SG_FLAG_DIRECT_IO
SG_FLAG_Q_AT_HEAD: int = lib.SG_FLAG_Q_AT_HEAD
SG_FLAG_Q_AT_TAIL: int = lib.SG_FLAG_Q_AT_TAIL
SG_INFO_OK_MASK: int = lib.SG_INFO_OK_MASK
SG_INFO_CHECK: int = lib.SG_INFO_CHECK
SG_MAX_QUEUE: int = lib.SG_MAX_QUEUE
SG_DEF_RESERVED_SIZE: int = lib.SG_DEF_RESERVED_SIZE
SG_SCSI_RESET_NOTHING: int = lib.SG_SCSI_RESET_NOTHING
SG_SCSI_RESET_DEVICE: int = lib.SG_SCSI_RESET_DEVICE
SG_SCSI_RESET_BUS: int = lib.SG_SCSI_RESET_BUS
SG_SCSI_RESET_HOST: int = lib.SG_SCSI_RESET_HOST
SENSE_MAX: int = lib.SGPY_SENSE_MAX
CDB_MAX: int = lib.SGPY_CDB_MAX

#: sg refuses a single transfer of this many bytes or more (drivers/scsi/sg.c,
#: sg_common_write: "if (hp->dxfer_len >= SZ_256M) return -EINVAL").
SG_TRANSFER_LIMIT = 256 * 1024 * 1024


def _raise(err: int, what: str) -> None:
    raise OSError(err, f"{what}: {os.strerror(err)}")


class ScsiId(NamedTuple):
    """``SG_GET_SCSI_ID``'s answer: where the device sits, and its type."""

    host_no: int
    channel: int
    scsi_id: int
    lun: int
    scsi_type: int
    h_cmd_per_lun: int
    d_queue_depth: int


class Header(NamedTuple):
    """The output fields of a completed ``sg_io_hdr`` (kernel ``<scsi/sg.h>``).

    ``duration`` is in milliseconds; ``sense`` holds the bytes the kernel
    wrote (``sb_len_wr`` of them).  Re-exported as :class:`sgpy.io.Header`,
    the type of ``io.hdr`` on every transport.
    """

    status: int
    masked_status: int
    msg_status: int
    host_status: int
    driver_status: int
    resid: int
    duration: int
    info: int
    sense: bytes

    @property
    def sb_len_wr(self) -> int:
        """How many sense bytes were written."""
        return len(self.sense)


_new_tuple = tuple.__new__

#: Clean completions (every output field 0 but the duration, in ms) share one
#: header per duration below this: a clean header differs from another only
#: by its duration, and a tuple is immutable.
CLEAN_MS = 4096
#: ``CLEAN_HEADERS[duration]``: the shared clean header, or None until :func:`clean_header` made it.
CLEAN_HEADERS: List[Optional[Header]] = [None] * CLEAN_MS


def clean_header(duration: int) -> Header:
    """The header of a completion whose every output field is zero but ``duration`` (shared below CLEAN_MS)."""
    if 0 <= duration < CLEAN_MS:
        h = CLEAN_HEADERS[duration]
        if h is None:
            h = CLEAN_HEADERS[duration] = _new_tuple(Header, (0, 0, 0, 0, 0, 0, duration, 0, b""))
        return h
    return _new_tuple(Header, (0, 0, 0, 0, 0, 0, duration, 0, b""))


#: ``buffer_pointer(buf)``: a C pointer to ``buf``'s memory, valid while the
#: result lives (it holds a buffer export of ``buf``: a ``bytearray`` cannot
#: be resized meanwhile).  cffi's ``ffi.from_buffer`` itself, not a Python
#: function around it: every read and write takes one.
buffer_pointer: Callable[[Any], Any] = ffi.from_buffer


#: Size of one anonymous mapping :class:`BufferSlabs` carves data-in buffers from.
SLAB_BYTES = 1 << 20
#: A private anonymous mapping faulted in by mmap() itself (MAP_POPULATE: Linux 2.5.46+, mmap(2)).
_MAP_POPULATED = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)


class BufferSlabs:
    """Data-in buffers for a batch of commands, carved from anonymous mappings of :data:`SLAB_BYTES`.

    Why: a batch of many reads given one ``bytearray`` each leaves glibc's
    heap holding their memory after the IOs are dropped -- freed chunks
    below the top of the heap are not returned to the system (malloc(3),
    M_TRIM_THRESHOLD; 100,000 4 KiB reads kept ~420 MB resident after
    they were freed).  A mapping is unmapped when the last buffer carved
    from it is dropped (Python's mmap object is released with its last
    export), so a dropped batch gives its memory back.  The cost of the
    rule: one buffer kept keeps its whole mapping (at most
    :data:`SLAB_BYTES`).

    :meth:`take` places ``n`` bytes in the current mapping (a new one
    when they do not fit) and returns a writable ``memoryview`` of the whole
    mapping, the offset of those bytes in it and a C pointer to them; the
    pointer is valid while that view (or any view of the same mapping)
    lives, which the IO holding it guarantees while the kernel may write.
    An IO keeps the mapping's view and the offset, and makes its own view of
    its bytes only when asked (:attr:`sgpy.io.Io.data_buf`).

    ``expect``: the bytes the batch will take, when known.  Its mappings are
    then sized to it (at most :data:`SLAB_BYTES`) and faulted in when made
    (``MAP_POPULATE``, mmap(2)): one system call instead of one page fault
    per 4 KiB page as the kernel copies each read in, which made a
    synchronous batch of 4 KiB reads 20% slower per command under QEMU.
    Without ``expect`` (or past it) mappings are :data:`SLAB_BYTES`: the
    first faulted in as used, the next ones when made (the batch has shown
    it is large).
    """

    __slots__ = ("_view", "_base", "_off", "_size", "_left")

    def __init__(self, expect: int = 0) -> None:
        if expect < 0:
            raise ValueError(f"expect must be >= 0 bytes, not {expect}")
        self._view: Optional[memoryview] = None
        self._base: Any = None
        self._off = 0
        self._size = 0
        self._left = expect

    def take(self, n: int) -> Tuple[memoryview, int, Any]:
        """``n`` bytes (``0 < n <= SLAB_BYTES``): the mapping's view, their offset in it, their C pointer."""
        if not 0 < n <= SLAB_BYTES:
            raise ValueError(f"a slab buffer holds 1 to {SLAB_BYTES} bytes, not {n}")
        off = self._off
        view = self._view
        left = self._left
        if off + n > self._size or view is None:
            # Not expected: faulted in at once only once the batch filled a whole
            # mapping already (a large batch; a small one would pay for pages it
            # never uses).
            size = min(SLAB_BYTES, -(-left // mmap.PAGESIZE) * mmap.PAGESIZE) if left >= n else SLAB_BYTES
            if left >= n or view is not None:
                m = mmap.mmap(-1, size, flags=_MAP_POPULATED)  # zero-filled, like bytearray(n)
            else:
                m = mmap.mmap(-1, size)
            view = self._view = memoryview(m)
            self._base = ffi.from_buffer(m)
            self._size = size
            off = 0
        self._left = left - n
        self._off = off + n
        return view, off, self._base + off


NULL = ffi.NULL


def new_slots(n: int) -> Any:
    """Allocate ``n`` zeroed submission slots (header + CDB + sense storage)."""
    return ffi.new("struct sgpy_slot[]", n)


def new_headers(n: int) -> Any:
    """Allocate ``n`` zeroed ``sg_io_hdr_t`` for :func:`reap` to read into."""
    return ffi.new("sg_io_hdr_t[]", n)


def new_pointers(n: int) -> Any:
    """``n`` NULL data pointers: a :class:`ManyRun`'s ``pointers``."""
    return ffi.new("void *[]", n)


def slot_pointers(n: int) -> Any:
    """An array of ``n`` slot pointers, the batch argument of :func:`submit`."""
    return ffi.new("struct sgpy_slot *[]", n)


def fill(
    slot: Any,
    direction: int,
    cdb: bytes,
    data: Any,
    data_len: int,
    timeout_ms: int,
    pack_id: int,
    flags: int = 0,
) -> None:
    """Prepare ``slot`` for one command.

    ``data`` is a cffi pointer (``ffi.from_buffer``) or ``ffi.NULL``; the
    caller keeps the buffer alive until the completion is read back.
    """
    err = lib.sgpy_fill(slot, direction, cdb, len(cdb), data, data_len, timeout_ms, pack_id, flags)
    if err:
        raise ValueError(f"CDB of {len(cdb)} bytes does not fit (1..{CDB_MAX} bytes)")


_err_box = ffi.new("int *")


def submit(fd: int, slot_ptrs: Any, n: int) -> Tuple[int, int]:
    """``write()`` the first ``n`` slots of ``slot_ptrs`` to ``fd`` in order.

    Returns ``(accepted, errno)``: how many the kernel took, and the errno
    that stopped the loop (0 when all were taken; ``EDOM`` when the fd
    already holds ``SG_MAX_QUEUE`` commands; ``EAGAIN``; ``ENODEV``...).
    Not thread-safe on its own: callers serialise per reactor.
    """
    box = _err_box
    done = lib.sgpy_submit(fd, slot_ptrs, n, box)
    return done, box[0]


def reap(fd: int, headers: Any, max_n: int) -> Tuple[int, int]:
    """Non-blocking ``read()`` of up to ``max_n`` completions into ``headers``.

    Returns ``(count, errno)``; errno is 0 when ``max_n`` were read, ``EAGAIN``
    when no more were ready, or the error that stopped the loop.
    """
    box = _err_box
    n = lib.sgpy_reap(fd, headers, max_n, box)
    return n, box[0]


REC: int = lib.SGPY_REC


def new_records(n: int) -> Any:
    """Room for ``n`` packed completion records (see :func:`reap_packed`)."""
    return ffi.new("int[]", n * REC)


def reap_packed(fd: int, records: Any, max_n: int) -> Tuple[int, int]:
    """Like :func:`reap`, packing each completion into ``REC`` ints.

    Record layout: pack_id, status, masked_status, msg_status, sb_len_wr,
    host_status, driver_status, resid, duration, info, clean (the duration
    when every other output field is zero, else -1).  Returns
    ``(count, errno)``; read the ints with :func:`unpack`.
    """
    box = _err_box
    n = lib.sgpy_reap_packed(fd, records, max_n, box)
    return n, box[0]


def unpack(records: Any, count: int) -> list:
    """The first ``count`` records' ints as one flat list."""
    return ffi.unpack(records, count * REC)


def slot_sense(slots: Any, index: int, length: int) -> bytes:
    """The sense bytes the kernel wrote into slot ``index``."""
    return ffi.buffer(slots[index].sense, length)[:]


def slot_address(slots: Any, index: int) -> Any:
    """A pointer to slot ``index`` (for a submit batch)."""
    return slots + index


def sg_io(fd: int, hdr: Any) -> None:
    """The synchronous ``SG_IO`` ioctl on a prepared header."""
    err = lib.sgpy_sg_io(fd, hdr)
    if err:
        _raise(err, "SG_IO")


def ioctl_int(fd: int, request: int, value: int = 0) -> int:
    """An sg ioctl taking an ``int *``; returns the int after the call."""
    box = ffi.new("int *", value)
    err = lib.sgpy_ioctl_int(fd, request, box)
    if err:
        _raise(err, f"ioctl 0x{request:x}")
    return int(box[0])


def version_num(fd: int) -> int:
    """``SG_GET_VERSION_NUM``: e.g. 30536 for sg 3.5.36.  Fails on non-sg fds."""
    return ioctl_int(fd, lib.SG_GET_VERSION_NUM)


def get_reserved_size(fd: int) -> int:
    """``SG_GET_RESERVED_SIZE``: the fd's reserve buffer, in bytes."""
    return ioctl_int(fd, lib.SG_GET_RESERVED_SIZE)


def set_reserved_size(fd: int, size: int) -> int:
    """``SG_SET_RESERVED_SIZE``, then read back what the kernel granted."""
    ioctl_int(fd, lib.SG_SET_RESERVED_SIZE, size)
    return get_reserved_size(fd)


#: The largest reserve buffer :func:`grow_reserve` asks for.
RESERVE_CAP = 4 * 1024 * 1024


def grow_reserve(fd: int, need: int, current: int) -> int:
    """Grow ``fd``'s reserve buffer to fit a ``need``-byte transfer; return its size now.

    sg lets one in-flight command per fd use the reserve buffer instead of
    pages allocated per command (drivers/scsi/sg.c, sg_link_reserve).  Sizes
    are rounded up to a power of two and capped at :data:`RESERVE_CAP`; a
    refusal leaves it as it was (slower, still correct).
    """
    if need <= current or current >= RESERVE_CAP:
        return current
    try:
        return set_reserved_size(fd, min(1 << (need - 1).bit_length(), RESERVE_CAP))
    except OSError:
        return current


#: sg's data direction (``dxfer_direction``) of each :class:`~sgpy.constants.Direction`.
DXFER = {
    Direction.NONE: SG_DXFER_NONE,
    Direction.TO_DEVICE: SG_DXFER_TO_DEV,
    Direction.FROM_DEVICE: SG_DXFER_FROM_DEV,
}


def get_scsi_id(fd: int) -> ScsiId:
    """``SG_GET_SCSI_ID``: host, channel, target, LUN and peripheral type."""
    sid = ffi.new("struct sg_scsi_id *")
    err = lib.sgpy_get_scsi_id(fd, sid)
    if err:
        _raise(err, "SG_GET_SCSI_ID")
    return ScsiId(
        sid.host_no, sid.channel, sid.scsi_id, sid.lun, sid.scsi_type, sid.h_cmd_per_lun, sid.d_queue_depth
    )


def num_waiting(fd: int) -> int:
    """``SG_GET_NUM_WAITING``: completed commands not yet read."""
    return ioctl_int(fd, lib.SG_GET_NUM_WAITING)


def set_force_pack_id(fd: int, on: bool) -> None:
    """``SG_SET_FORCE_PACK_ID``: make read() honour the header's pack_id."""
    ioctl_int(fd, lib.SG_SET_FORCE_PACK_ID, 1 if on else 0)


def set_keep_orphan(fd: int, on: bool) -> None:
    """``SG_SET_KEEP_ORPHAN``: keep an interrupted SG_IO's result for read()."""
    ioctl_int(fd, lib.SG_SET_KEEP_ORPHAN, 1 if on else 0)


def sg_tablesize(fd: int) -> int:
    """``SG_GET_SG_TABLESIZE``: scatter-gather elements the host supports."""
    return ioctl_int(fd, lib.SG_GET_SG_TABLESIZE)


def scsi_reset(fd: int, kind: int) -> None:
    """``SG_SCSI_RESET`` with one of the ``SG_SCSI_RESET_*`` values."""
    ioctl_int(fd, lib.SG_SCSI_RESET, kind)


class SyncCaller:
    """One reusable slot for synchronous ``SG_IO`` calls on one fd.

    ``bsg=True`` speaks the v4 header a bsg node (``/dev/bsg/H:C:T:L``) takes.

    Keeps the header, CDB and sense storage between calls so a synchronous
    command allocates nothing in cffi, and fills and sends it in one C call
    (``sgpy_sync_call``).  Not thread-safe: one per channel and thread.
    """

    __slots__ = ("fd", "slot", "bsg", "_hdr", "_call")

    def __init__(self, fd: int, bsg: bool = False) -> None:
        self.fd = fd
        #: The C submission slot (header, CDB and sense storage), for :func:`sync_plain`.
        self.slot = ffi.new("struct sgpy_slot *")
        self._hdr = ffi.addressof(self.slot, "hdr")
        #: 1 on a bsg node (the v4 header), else 0: :func:`sync_plain`'s second argument.
        self.bsg = 1 if bsg else 0
        self._call = lib.sgpy_sync_call

    def call(self, cdb: bytes, direction: int, data: Any, length: int, timeout_ms: int) -> Header:
        """Run one command and return its outcome.

        ``data`` is a C pointer to the data buffer (:func:`buffer_pointer`;
        the caller keeps the buffer alive and unchanged until this returns)
        or ``ffi.NULL``.  Raises OSError with the ioctl's errno, ValueError
        for a CDB that does not fit.
        """
        rc = self._call(self.fd, self.bsg, self.slot, direction, cdb, len(cdb), data, length, timeout_ms)
        h = self._hdr
        if rc == 0:  # clean: GOOD or CONDITION MET, nothing else to read (sgpy_sync_call)
            # tuple.__new__ straight: Header(...) goes through a Python-level __new__.
            return _new_tuple(Header, (h.status, h.masked_status, 0, 0, h.driver_status, h.resid, h.duration,
                                       h.info, b""))
        if rc > 0:
            self.fail(rc, cdb)
        return self.outcome()

    def outcome(self) -> Header:
        """Every output field of the last call, with its sense bytes."""
        h = self._hdr
        n = h.sb_len_wr
        sense = bytes(ffi.buffer(self.slot.sense, n)) if n else b""
        return Header(h.status, h.masked_status, h.msg_status, h.host_status, h.driver_status, h.resid,
                      h.duration, h.info, sense)

    @staticmethod
    def fail(err: int, cdb: bytes) -> None:
        """Raise what a call that failed with ``err`` raises: ValueError for a CDB that does not fit,
        else OSError with the errno."""
        if err == _errno.EINVAL and not 0 < len(cdb) <= CDB_MAX:
            raise ValueError(f"CDB of {len(cdb)} bytes does not fit (1..{CDB_MAX} bytes)")
        _raise(err, "SG_IO")


#: ``sync_plain(caller.fd, caller.bsg, caller.slot, direction, cdb, len(cdb), data, length, timeout_ms)``:
#: :meth:`SyncCaller.call` for the per-command fast path, with nothing built
#: unless needed.  Returns the duration in ms (>= 0) when the command ended
#: with every other output field zero (GOOD, no residue, no sense: its header
#: is :func:`clean_header`), -1 when it ended otherwise (read it with
#: :meth:`SyncCaller.outcome`), or ``-1 - errno`` when the ioctl failed
#: (:meth:`SyncCaller.fail`).  The caller keeps the slot to itself and the
#: data buffer alive until it returns.
sync_plain = lib.sgpy_sync_plain


MANY_FDS_MAX: int = lib.SGPY_MANY_FDS_MAX
#: The longest a :meth:`ManyRun.run` call waits before it returns EAGAIN, so that
#: a signal that came just before its ``poll()`` is handled this late at worst.
MANY_SLICE_MS = 100
#: ``ManyRun.outcomes()`` values besides a plain success's duration (>= 0).
MANY_UNSENT: int = lib.SGPY_MANY_UNSENT
MANY_INFLIGHT: int = lib.SGPY_MANY_INFLIGHT
MANY_PARKED: int = lib.SGPY_MANY_PARKED
_MANY_CMD = struct.Struct(f"=iII{CDB_MAX}s")
if _MANY_CMD.size != ffi.sizeof("struct sgpy_many_cmd"):  # pragma: no cover - a build for another ABI
    raise ImportError("sgpy._sgffi: struct sgpy_many_cmd is not laid out as sgpy packs it")


def new_flag() -> Any:
    """An ``int`` in C memory, 0, that another thread sets to stop a :class:`ManyRun` (``flag[0] = 1``)."""
    return ffi.new("int *")


def many_descriptor(direction: int, cdb: bytes, length: int) -> bytes:
    """One command of a :class:`ManyRun` batch, packed (``struct sgpy_many_cmd``).

    ValueError for a CDB that does not fit a slot.
    """
    if not 0 < len(cdb) <= CDB_MAX:
        raise ValueError(f"CDB of {len(cdb)} bytes does not fit (1..{CDB_MAX} bytes)")
    return _MANY_CMD.pack(direction, len(cdb), length, cdb)


class ManyRun:
    """A batch of commands sent and collected in C over fds the caller owns (``sgpy_many_run``).

    ``descriptors`` holds ``n`` commands packed by :func:`many_descriptor`;
    ``pointers`` a C pointer per command for those that move data (or
    None when none does).  The commands go out in order, at most
    ``SG_MAX_QUEUE`` per fd; :meth:`run` returns 0 once every one is
    back, -1 when a completion that is not plain waits in :meth:`parked`,
    or an errno.  Nothing else may read the fds while the batch has
    commands in flight, and the buffers behind ``pointers`` must stay
    alive until :meth:`run` returned 0 or the fds carrying commands are
    closed (:meth:`busy_fds`).  ``stop`` (:func:`new_flag`) set non-zero
    from any thread makes it send nothing more.
    """

    __slots__ = ("m", "out", "n", "_keep")

    def __init__(self, fds: Sequence[int], descriptors: bytes, n: int, pointers: Any, timeout_ms: int,
                 stall_ms: int, stop: Any) -> None:
        k = len(fds)
        if not 1 <= k <= MANY_FDS_MAX:
            raise ValueError(f"a batch uses 1 to {MANY_FDS_MAX} fds, not {k}")
        if len(descriptors) != n * _MANY_CMD.size:
            raise ValueError(f"{len(descriptors)} bytes of descriptors for {n} commands")
        slots = SG_MAX_QUEUE * k
        m = ffi.new("struct sgpy_many *")
        fd_array = ffi.new("int[]", list(fds))
        slot_array = ffi.new("struct sgpy_slot[]", slots)
        free = ffi.new("int[]", list(range(slots - 1, -1, -1)))
        per_fd = ffi.new("int[]", k)
        out = ffi.new("int[]", [MANY_UNSENT] * n) if n else ffi.new("int[]", 1)
        cmds = ffi.from_buffer("struct sgpy_many_cmd[]", descriptors)
        m.nfds = k
        m.fds = fd_array
        m.slots = slot_array
        m.free = free
        m.nfree = slots
        m.fd_inflight = per_fd
        m.n = n
        m.cmds = cmds
        m.bufs = NULL if pointers is None else pointers
        m.timeout_ms = timeout_ms
        m.stall_ms = stall_ms
        m.slice_ms = MANY_SLICE_MS
        m.out = out
        m.parked = m.bad = -1
        m.stop = stop
        self.m = m
        self.out = out
        self.n = n
        # The C struct points into these: they live as long as the batch.
        self._keep = (fd_array, slot_array, free, per_fd, cmds, descriptors, pointers, stop)

    def run(self) -> int:
        """Send and collect until done (0), a completion to read (-1: :meth:`parked`), or an errno
        (EINTR: a signal came; EAGAIN: :data:`MANY_SLICE_MS` passed; call again)."""
        return lib.sgpy_many_run(self.m)  # type: ignore[no-any-return]

    def parked(self) -> Tuple[int, Header]:
        """The command index and the whole outcome of the completion :meth:`run` handed over."""
        slot = self.m.slots[self.m.parked]
        h = slot.hdr
        n = h.sb_len_wr
        sense = bytes(ffi.buffer(slot.sense, n)) if n else b""
        return h.pack_id, Header(h.status, h.masked_status, h.msg_status, h.host_status, h.driver_status,
                                 h.resid, h.duration, h.info, sense)

    def outcomes(self) -> List[int]:
        """Per command: a plain success's duration (ms, >= 0), or :data:`MANY_PARKED`,
        :data:`MANY_UNSENT`, :data:`MANY_INFLIGHT`."""
        return ffi.unpack(self.out, self.n)  # type: ignore[no-any-return]

    @property
    def bad(self) -> int:
        """The command whose ``write()`` failed (the errno :meth:`run` returned), or -1."""
        return self.m.bad  # type: ignore[no-any-return]

    @property
    def sent(self) -> int:
        """How many commands the kernel took."""
        return self.m.sent  # type: ignore[no-any-return]

    def busy_fds(self) -> List[int]:
        """The positions (in ``fds``) of the fds that still carry commands of the batch."""
        m = self.m
        return [f for f in range(m.nfds) if m.fd_inflight[f] > 0]


JOB_FREE: int = lib.SGPY_JOB_FREE
JOB_PARKED: int = lib.SGPY_JOB_PARKED
LBA_FIXED: int = lib.SGPY_LBA_FIXED
LBA_SEQUENTIAL: int = lib.SGPY_LBA_SEQUENTIAL
LBA_RANDOM: int = lib.SGPY_LBA_RANDOM
LBA_LIST: int = lib.SGPY_LBA_LIST
HIST_BUCKETS: int = lib.SGPY_HIST
#: How far a rate-limited job may catch up after a stall: its token bucket
#: holds this much time's worth of commands (20 ms).
RATE_BURST_NS = 20_000_000


class JobCore:
    """A job's C state (``struct sgpy_job``, sgpy/_sg.c) and every array it points at.

    The job keeps ``depth`` commands from one CDB template in flight over
    ``fds`` and resubmits each as it completes, entirely in C; see
    :mod:`sgpy.job` for the Python side.  The arrays live as long as this
    object: the kernel may write into the data buffers and sense storage
    until every command came back.
    """

    __slots__ = ("j", "_keep", "depth", "nfds", "_buf_len")

    def __init__(
        self,
        *,
        fds: Sequence[int],
        depth: int,
        cdb: bytes,
        direction: int,
        buf: Any,
        buf_len: int,
        share_buf: bool,
        timeout_ms: int,
        lba_offset: int,
        lba_bytes: int,
        lba_mode: int,
        lba_first: int,
        lba_units: int,
        lba_step: int,
        lba_list: Optional[Sequence[int]],
        seed: int,
        limit: int,
        deadline_ns: int,
        latency: bool,
        sync: bool,
        block_size: int = 0,
        stamp: bool = False,
        verify: bool = False,
        tag: int = 0,
        write_cdb: Optional[bytes] = None,
        write_buf: Any = None,
        write_share: bool = False,
        read_pct: int = 100,
        mix_seed: int = 0,
        rate: int = 0,
    ) -> None:
        if not 1 <= len(cdb) <= CDB_MAX:
            raise ValueError(f"CDB of {len(cdb)} bytes does not fit (1..{CDB_MAX} bytes)")
        j = ffi.new("struct sgpy_job *")
        keep: List[Any] = []

        def arr(ctype: str, n: int, init: Any = None) -> Any:
            a = ffi.new(ctype, init if init is not None else n)
            keep.append(a)
            return a

        j.nfds = len(fds)
        j.fds = arr("int[]", 0, list(fds))
        j.fd_inflight = arr("int[]", len(fds))
        j.epfd = -1
        j.depth = depth
        j.slots = arr("struct sgpy_slot[]", depth)
        if buf is not None:
            p = ffi.from_buffer(buf)
            keep.append(p)
            keep.append(buf)
            j.bufs = ffi.cast("unsigned char *", p)
        else:
            j.bufs = ffi.NULL
        j.buf_len = buf_len
        j.share_buf = 1 if share_buf else 0
        j.direction = direction
        ffi.memmove(j.cdb, cdb, len(cdb))
        j.cdb_len = len(cdb)
        j.timeout_ms = timeout_ms
        j.lba_offset = lba_offset
        j.lba_bytes = lba_bytes
        j.lba_mode = lba_mode
        j.lba_first = lba_first
        j.lba_units = lba_units
        j.lba_step = lba_step
        if lba_list is not None:
            j.lba_list = arr("uint64_t[]", 0, list(lba_list))
            j.lba_list_len = len(lba_list)
        j.rng = seed or 0x9E3779B97F4A7C15
        j.limit = limit
        j.deadline_ns = deadline_ns
        j.latency = 1 if latency else 0
        j.sync = 1 if sync else 0
        j.state = arr("int[]", depth)
        j.started = arr("int64_t[]", depth)
        j.lba_of = arr("uint64_t[]", depth)
        j.parked = arr("int[]", depth)
        if (stamp or verify) and (block_size < 16 or not buf_len or buf_len % block_size):
            raise ValueError("stamps need whole blocks of at least 16 bytes")
        j.block_size = block_size
        j.stamp = 1 if stamp else 0
        j.verify = 1 if verify else 0
        j.tag = tag
        j.timerfd = -1
        j.throttled = arr("int[]", depth)
        if write_cdb is not None:
            # A mixed job: reads into per-slot buffers, writes from write_buf.
            if len(write_cdb) != len(cdb):
                raise ValueError("a mixed job's read and write CDBs have one length")
            if buf is None or share_buf or not 0 <= read_pct <= 100:
                raise ValueError("a mixed job reads into one buffer per slot, read_pct 0..100")
            need = buf_len * (1 if write_share else depth)
            if write_buf is None or memoryview(write_buf).nbytes < need or memoryview(buf).nbytes < buf_len * depth:
                raise ValueError("a mixed job's buffers are smaller than its slots")
            wp = ffi.from_buffer(write_buf)
            keep.append(wp)
            keep.append(write_buf)
            j.wbufs = ffi.cast("unsigned char *", wp)
            j.wshare = 1 if write_share else 0
            ffi.memmove(j.wcdb, write_cdb, len(write_cdb))
            j.is_write = arr("int[]", depth)
            j.read_pct = read_pct
            j.mix_rng = mix_seed or 0x9E3779B97F4A7C15
            j.mix = 1
        if rate:
            if not 1 <= rate <= 10**9:
                raise ValueError(f"rate {rate} is not in 1..10**9 commands per second")
            j.rate = rate
            j.rate_interval = 10**9 // rate
            j.rate_rem = 10**9 % rate
            j.rate_burst_ns = RATE_BURST_NS
        self._buf_len = buf_len
        self.j = j
        self._keep = keep
        self.depth = depth
        self.nfds = len(fds)

    def make_epoll(self) -> int:
        """Create the job's epoll instance over its fds; returns its fd."""
        r = lib.sgpy_job_epoll(self.j)
        if r < 0:
            _raise(-r, "epoll for the job")
        return int(r)

    def prime(self) -> int:
        """Prepare the slots and start the first commands; 0 or an errno."""
        return int(lib.sgpy_job_prime(self.j))

    def step(self, timeout_ms: int, budget: int, slice_ns: int = 0) -> int:
        """Wait up to ``timeout_ms``, then handle completions for up to ``budget``
        commands or ``slice_ns`` (0: no limit); count, or -errno (GIL released)."""
        return int(lib.sgpy_job_step(self.j, timeout_ms, budget, slice_ns))

    def run_sync(self, budget: int) -> int:
        """Up to ``budget`` commands over SG_IO; count, or -errno (GIL released)."""
        return int(lib.sgpy_job_sync(self.j, budget))

    def take_parked(self) -> List[int]:
        """The slots parked since the last call (completions that were not clean)."""
        j = self.j
        n = j.nparked
        if not n:
            return []
        out = ffi.unpack(j.parked, n)
        j.nparked = 0
        return out

    def slot_result(self, i: int) -> Header:
        """Slot ``i``'s completion: status bytes, resid, duration, info and sense."""
        s = self.j.slots[i]
        h = s.hdr
        n = h.sb_len_wr
        sense = bytes(ffi.buffer(s.sense, n)) if n else b""
        return Header(h.status, h.masked_status, h.msg_status, h.host_status, h.driver_status, h.resid,
                      h.duration, h.info, sense)

    def slot_lba(self, i: int) -> int:
        """The LBA slot ``i``'s last command was sent with."""
        return int(self.j.lba_of[i])

    def slot_data(self, i: int) -> bytes:
        """A copy of slot ``i``'s data buffer."""
        j = self.j
        start = 0 if j.share_buf else i * self._buf_len
        return bytes(ffi.buffer(j.bufs + start, self._buf_len))

    def resubmit(self, i: int) -> int:
        """Release parked slot ``i`` (starting it again unless the job is ending); 0 or an errno."""
        return int(lib.sgpy_job_resubmit(self.j, i))

    def histogram(self) -> List[int]:
        """The latency histogram's bucket counts (see :func:`sgpy.job.bucket_bounds`)."""
        return ffi.unpack(self.j.hist, HIST_BUCKETS)

    def write_histogram(self) -> List[int]:
        """A mixed job's writes' latency histogram (a part of :meth:`histogram`)."""
        return ffi.unpack(self.j.whist, HIST_BUCKETS)

    def slot_is_write(self, i: int) -> bool:
        """Whether slot ``i``'s last command was a mixed job's write."""
        j = self.j
        return bool(j.mix and j.is_write[i])

    @property
    def timer_fd(self) -> int:
        """The rate limit's timerfd (created by :meth:`make_epoll`), or -1."""
        return int(self.j.timerfd)


def timer_new() -> int:
    """A non-blocking CLOCK_MONOTONIC timerfd (the IO engine's rate limit); the caller closes it."""
    r = int(lib.sgpy_timer_new())
    if r < 0:
        _raise(-r, "timerfd_create")
    return r


def timer_arm(fd: int, at_ns: int) -> None:
    """Make timerfd ``fd`` fire once at ``at_ns`` (``time.monotonic_ns()`` time)."""
    err = int(lib.sgpy_timer_arm(fd, at_ns))
    if err:
        _raise(err, "timerfd_settime")


def timer_clear(fd: int) -> None:
    """Consume timerfd ``fd``'s expirations, so that epoll stops reporting it."""
    err = int(lib.sgpy_timer_clear(fd))
    if err:
        _raise(err, "read of a timerfd")


def hist_index(ns: int) -> int:
    """The latency histogram bucket the C side files ``ns`` nanoseconds under."""
    return int(lib.sgpy_hist_index(ns))
