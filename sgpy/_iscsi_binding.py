"""The one module that touches the compiled extension ``sgpy._iscsiffi``.

``sgpy._iscsiffi`` wraps libiscsi's asynchronous API (``iscsi_get_fd``,
``iscsi_which_events``, ``iscsi_service``, ``iscsi_scsi_command_async``...)
with the few helpers of ``sgpy/_iscsi.c``: completions are written as packed
records that Python reads in batches, never as one Python callback per
command.  The extension is optional (it needs libiscsi's header at build
time); :func:`available` says whether it was built.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Tuple

from sgpy.errors import SgError

try:
    from sgpy._iscsiffi import ffi, lib
except ImportError as _exc:  # pragma: no cover - depends on the install
    ffi = None
    lib = None
    _IMPORT_ERROR: Optional[str] = str(_exc)
else:
    _IMPORT_ERROR = None

__all__ = [
    "available",
    "require",
    "ExtensionMissing",
    "Connection",
    "Timer",
    "REC",
    "SENSE_MAX",
    "CDB_MAX",
    "CANCELLED",
    "ERROR",
    "TIMEOUT",
    "POLLIN",
    "POLLOUT",
    "DIGESTS",
]

_MISSING = (
    "iSCSI needs sgpy's extension sgpy._iscsiffi, which this installation lacks (it is compiled only where "
    "libiscsi's header is present): install libiscsi's development files (Debian/Ubuntu: sudo apt-get install libiscsi-dev), "
    "then reinstall sgpy from source: pip install --force-reinstall --no-deps --no-cache-dir "
    "--no-binary sgpy-scsi sgpy-scsi (in a checkout: pip install -e .)"
)


class ExtensionMissing(SgError, ImportError):
    """The iSCSI extension is not built: an ImportError, and an SgError so the CLI says it in one line."""


def available() -> bool:
    """True when the iSCSI extension was compiled (libiscsi-dev was present at install)."""
    return lib is not None


def require() -> None:
    """Raise :class:`ExtensionMissing` (an ImportError) saying what to install when the extension is missing."""
    if lib is None:
        # "No module named ..." adds nothing; another reason (say, libiscsi.so missing) is worth saying.
        reason = "" if str(_IMPORT_ERROR).startswith("No module named") else f" ({_IMPORT_ERROR})"
        raise ExtensionMissing(_MISSING + reason)


if lib is not None:
    REC: int = lib.SGPY_ISCSI_REC
    SENSE_MAX: int = lib.SGPY_ISCSI_SENSE_MAX
    CDB_MAX: int = lib.SGPY_ISCSI_CDB_MAX
    CANCELLED: int = lib.SGPY_ISCSI_CANCELLED
    ERROR: int = lib.SGPY_ISCSI_ERROR
    TIMEOUT: int = lib.SGPY_ISCSI_TIMEOUT
    POLLIN: int = lib.POLLIN
    POLLOUT: int = lib.POLLOUT
    #: header_digest option -> libiscsi's offer (RFC 7143 13.1: the first
    #: value in the list is preferred).
    DIGESTS = {
        "none": lib.ISCSI_HEADER_DIGEST_NONE,
        "crc32c": lib.ISCSI_HEADER_DIGEST_CRC32C,
        "none,crc32c": lib.ISCSI_HEADER_DIGEST_NONE_CRC32C,
        "crc32c,none": lib.ISCSI_HEADER_DIGEST_CRC32C_NONE,
    }
else:  # pragma: no cover - depends on the install
    REC = 5
    SENSE_MAX = 252
    CDB_MAX = 16
    CANCELLED, ERROR, TIMEOUT = -1, -2, -3
    POLLIN, POLLOUT = 1, 4
    DIGESTS = {"none": 0, "crc32c": 3, "none,crc32c": 1, "crc32c,none": 2}


def _text(p: Any) -> str:
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


class Connection:
    """One libiscsi context: a TCP connection and, once logged in, a session.

    Not thread-safe: the owner serialises calls (the reactor's lock).
    """

    __slots__ = ("_c", "ptr", "closed")

    def __init__(self, initiator_name: str) -> None:
        require()
        c = lib.sgpy_iscsi_new(initiator_name.encode())
        if c == ffi.NULL:
            raise MemoryError("libiscsi could not create a context")
        self._c = ffi.gc(c, lib.sgpy_iscsi_free)
        self.ptr = c
        self.closed = False

    # -- configuration (before connect) -------------------------------------

    def configure(
        self,
        *,
        target: Optional[str],
        discovery: bool,
        lun: int,
        header_digest: str,
        user: Optional[str],
        password: Optional[str],
        target_user: Optional[str],
        target_password: Optional[str],
        alias: Optional[str] = None,
    ) -> None:
        """Set the login parameters; ValueError names a refused one."""
        ctx = self.ptr.ctx
        self.ptr.lun = lun
        kind = lib.ISCSI_SESSION_DISCOVERY if discovery else lib.ISCSI_SESSION_NORMAL
        if lib.iscsi_set_session_type(ctx, kind) != 0:
            raise ValueError(self.error())
        if target is not None and lib.iscsi_set_targetname(ctx, target.encode()) != 0:
            raise ValueError(f"target name {target!r} refused: {self.error()}")
        if alias and lib.iscsi_set_alias(ctx, alias.encode()) != 0:
            raise ValueError(f"alias {alias!r} refused: {self.error()}")
        if lib.iscsi_set_header_digest(ctx, DIGESTS[header_digest]) != 0:
            raise ValueError(f"header digest {header_digest!r} refused: {self.error()}")
        if user is not None:
            if lib.iscsi_set_initiator_username_pwd(ctx, user.encode(), (password or "").encode()) != 0:
                raise ValueError(f"CHAP user {user!r} refused: {self.error()}")
        if target_user is not None:
            if lib.iscsi_set_target_username_pwd(ctx, target_user.encode(), (target_password or "").encode()) != 0:
                raise ValueError(f"mutual CHAP user {target_user!r} refused: {self.error()}")

    # -- state ---------------------------------------------------------------

    def fileno(self) -> int:
        """The socket (-1 before connect)."""
        return int(lib.iscsi_get_fd(self.ptr.ctx))

    def which_events(self) -> int:
        """The poll() events libiscsi wants to hear about now."""
        return int(lib.iscsi_which_events(self.ptr.ctx))

    def error(self) -> str:
        """libiscsi's description of the last failure."""
        return _text(lib.iscsi_get_error(self.ptr.ctx))

    def logged_in(self) -> bool:
        """True once the login phase completed."""
        return bool(lib.iscsi_is_logged_in(self.ptr.ctx))

    @property
    def lost(self) -> bool:
        """libiscsi dropped the session (cancelled commands on its own, or service failed)."""
        return bool(self.ptr.lost)

    @property
    def outstanding(self) -> int:
        """Commands libiscsi still holds (not yet called back)."""
        return int(self.ptr.outstanding)

    # -- steps driven without a reactor --------------------------------------

    def start(self, step: str, portal: str = "") -> int:
        """Begin ``connect``/``login``/``logout``/``discovery``; 0 or -1 (see :meth:`error`)."""
        p = self.ptr
        if step == "connect":
            return int(lib.sgpy_iscsi_connect(p, portal.encode()))
        if step == "login":
            return int(lib.sgpy_iscsi_login(p))
        if step == "logout":
            return int(lib.sgpy_iscsi_logout(p))
        if step == "discovery":
            return int(lib.sgpy_iscsi_discovery(p))
        raise ValueError(f"unknown step {step!r}")

    def step_result(self) -> Tuple[bool, int, str]:
        """``(done, status, reason)`` of the step begun last."""
        p = self.ptr
        return bool(p.op_done), int(p.op_status), _text(p.op_error)

    def run(self, done: Callable[[], bool], deadline: float) -> bool:
        """poll() and service until ``done()`` or the monotonic ``deadline``; False on timeout.

        A failed ``iscsi_service`` ends the loop too (``done()`` then usually
        reports the step's failure).
        """
        p = self.ptr
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if lib.sgpy_iscsi_poll_once(p, max(1, min(int(left * 1000), 100))) < 0 and not done():
                return done()
        return True

    def discovery_text(self) -> str:
        """The discovery answer of the last ``discovery`` step."""
        return _text(self.ptr.text)

    def discovery_targets(self) -> List[Tuple[str, Tuple[str, ...]]]:
        """The last ``discovery`` step's answer: ``(TargetName, (TargetAddress, ...))`` per target, in its order.

        ``sgpy_discovery_cb`` copies libiscsi's list (which libiscsi frees
        when the callback returns) as one ``name\tportal...\n`` line per
        target; this reads those lines back.
        """
        out: List[Tuple[str, Tuple[str, ...]]] = []
        for line in self.discovery_text().split("\n"):
            if line:
                name, *portals = line.split("\t")
                out.append((name, tuple(portals)))
        return out

    def set_lun(self, lun: int) -> None:
        """Address the commands submitted from now on to ``lun``."""
        self.ptr.lun = lun

    def run_command(self, lun: int, cdb: bytes, direction: int, length: int, data: bytes = b"", *,
                    deadline: float) -> Optional[Tuple[int, bytes, bytes]]:
        """Send one command outside any reactor and wait for it until the monotonic ``deadline``.

        ``direction``: 0 none, 1 in (``length`` bytes are read), 2 out
        (``data`` is written).  Returns ``(status, data_in, sense)``, where
        ``status`` is the SCSI status byte or :data:`CANCELLED`/:data:`ERROR`/
        :data:`TIMEOUT` (negative: the transport failed it); None when
        libiscsi refused to queue it (see :meth:`error`) or no answer came in
        time.  Only for a connection with no other command in flight.

        The command's buffer is Python memory that libiscsi reads Data-Out
        from and writes Data-In into (``scsi_task_set_iov_in``/``_out``)
        until the task is called back.  A command that is still queued when
        this returns, for whatever reason (no answer by ``deadline``, an
        exception such as KeyboardInterrupt while waiting), is cancelled in
        libiscsi first (``iscsi_scsi_cancel_all_tasks``: the task's PDUs
        leave libiscsi's queues and the task is freed), so that a late
        answer finds no task and is never written into freed memory.  The
        target is not told: the session should be closed, not reused.
        """
        p = self.ptr
        buf: Any = bytearray(length) if direction == 1 else bytes(data)
        size = len(buf)
        ptr = ffi.from_buffer(buf) if size else ffi.NULL
        p.lun = lun
        if lib.sgpy_iscsi_submit(p, 0, cdb, len(cdb), direction, ptr, size) != 0:
            return None
        answered = False
        try:
            answered = self.run(lambda: p.ndone > 0, deadline)
        finally:
            if not answered:
                self.cancel_all()
        if not answered:
            return None
        n, ints = self.take()
        status, resid, sense_len = ints[1], ints[2], ints[4]
        sense = self.sense(0, sense_len) if sense_len else b""
        self.taken()
        got = bytes(buf[:max(0, size - resid)]) if direction == 1 and status >= 0 else b""
        return int(status), got, sense

    # -- commands ------------------------------------------------------------

    def submit(self, ident: int, cdb: bytes, direction: int, buf: Any, length: int) -> int:
        """Queue one command (``direction`` 0 none, 1 in, 2 out); 0, -1 refused, -2 CDB too long."""
        return int(lib.sgpy_iscsi_submit(self.ptr, ident, cdb, len(cdb), direction,
                                         ffi.NULL if buf is None else buf, length))

    def abort(self, ident: int) -> int:
        """Send ABORT TASK for command ``ident``; 0, -1 refused, 1 not outstanding."""
        return int(lib.sgpy_iscsi_abort(self.ptr, ident))

    def cancel_all(self) -> None:
        """Release every command locally (the target is not told); no records are written."""
        lib.sgpy_iscsi_cancel_all(self.ptr)

    def service(self, revents: int) -> int:
        """``iscsi_service``: the rc (negative: the session failed)."""
        return int(lib.sgpy_iscsi_service(self.ptr, revents))

    def take(self) -> Tuple[int, List[int]]:
        """The completion records written since the last take: ``(count, flat ints)``."""
        p = self.ptr
        n = p.ndone
        if not n:
            return 0, []
        ints = ffi.unpack(p.rec, n * REC)
        return n, ints

    def sense(self, index: int, length: int) -> bytes:
        """The sense bytes of record ``index`` of the current batch."""
        return ffi.buffer(self.ptr.sense + index * SENSE_MAX, length)[:]

    def taken(self) -> None:
        """Mark the current batch of records as read."""
        self.ptr.ndone = 0

    def close(self) -> None:
        """Release everything (commands, context, socket).  Idempotent."""
        if self.closed:
            return
        self.closed = True
        c = self._c
        self._c = None
        ffi.gc(c, None)
        lib.sgpy_iscsi_free(c)
        self.ptr = ffi.NULL


class Timer:
    """A non-blocking monotonic timerfd, for periodic work from a reactor."""

    __slots__ = ("fd", "armed")

    def __init__(self) -> None:
        require()
        fd = int(lib.sgpy_timer_new())
        if fd < 0:
            err = ffi.errno
            raise OSError(err, "timerfd_create failed")
        self.fd = fd
        self.armed = False

    def arm(self, every_ms: int) -> None:
        """Fire every ``every_ms`` milliseconds from now."""
        err = lib.sgpy_timer_set(self.fd, every_ms, every_ms)
        if err:
            raise OSError(err, "timerfd_settime failed")
        self.armed = True

    def disarm(self) -> None:
        """Stop firing."""
        lib.sgpy_timer_set(self.fd, 0, 0)
        self.armed = False

    def drain(self) -> int:
        """How many periods passed since the last drain (0 if none)."""
        return int(lib.sgpy_timer_drain(self.fd))
