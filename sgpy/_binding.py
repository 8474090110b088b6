"""The one module that touches the compiled extension ``sgpy._sgffi``.

Everything else in sgpy reaches the kernel through the functions here.  The
kernel ABI (``struct sg_io_hdr``'s layout, ioctl numbers, ``SG_*`` flags)
comes from ``<scsi/sg.h>`` through cffi; this module only re-exports the
values and turns error returns into :class:`OSError` with the errno.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, Tuple

try:
    from sgpy._sgffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "sgpy's C extension sgpy._sgffi is not built: install sgpy with "
        "'pip install .' (or 'pip install -e .') so that it is compiled"
    ) from exc

__all__ = [
    "ffi",
    "SG_DXFER_NONE",
    "SG_DXFER_TO_DEV",
    "SG_DXFER_FROM_DEV",
    "SG_MAX_QUEUE",
    "SENSE_MAX",
    "CDB_MAX",
    "ScsiId",
    "SgIoResult",
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


class SgIoResult(NamedTuple):
    """The output fields of one ``sg_io_hdr`` after completion."""

    status: int
    masked_status: int
    host_status: int
    driver_status: int
    resid: int
    duration: int
    info: int
    sense: bytes


def buffer_pointer(buf: Any) -> Any:
    """A C pointer to ``buf``'s memory (kept valid while the result lives)."""
    return ffi.from_buffer(buf)


NULL = ffi.NULL


def new_slots(n: int) -> Any:
    """Allocate ``n`` zeroed submission slots (header + CDB + sense storage)."""
    return ffi.new("struct sgpy_slot[]", n)


def new_headers(n: int) -> Any:
    """Allocate ``n`` zeroed ``sg_io_hdr_t`` for :func:`reap` to read into."""
    return ffi.new("sg_io_hdr_t[]", n)


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
    host_status, driver_status, resid, duration, info.  Returns
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
    command allocates nothing in cffi.  Not thread-safe: one per channel and
    thread.
    """

    __slots__ = ("fd", "_slot", "_hdr", "_io")

    def __init__(self, fd: int, bsg: bool = False) -> None:
        self.fd = fd
        self._slot = ffi.new("struct sgpy_slot *")
        self._hdr = ffi.addressof(self._slot, "hdr")
        self._io = lib.sgpy_bsg_io if bsg else lib.sgpy_sg_io

    def call(self, cdb: bytes, direction: int, buf: Any, length: int, timeout_ms: int) -> SgIoResult:
        """Run one command; ``buf`` is a writable/readable buffer or None."""
        data = ffi.from_buffer(buf) if buf is not None else ffi.NULL
        fill(self._slot, direction, cdb, data, length, timeout_ms, 0)
        err = self._io(self.fd, self._hdr)
        if err:
            _raise(err, "SG_IO")
        h = self._hdr
        n = h.sb_len_wr
        sense = bytes(ffi.buffer(self._slot.sense, n)) if n else b""
        return SgIoResult(
            h.status, h.masked_status, h.host_status, h.driver_status, h.resid, h.duration, h.info, sense
        )

