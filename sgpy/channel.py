"""Channels: a device, a pool of sg file descriptors, and a user-space queue.

``Channel.from_path("/dev/sg3")`` opens the device; ``execute`` /
``execute_many`` / ``channel.cmd.Name(...)`` send commands, synchronously
(returning the finished IO or raising its failure) or with ``async_=True``
(returning pending IOs to ``poll()``/``wait()``).

A channel on an sg character device queues commands in user space and
spreads them over a pool of up to ``max_fds`` descriptors open on the same
device, one in-flight command per fd before any fd takes a second, so each
command can use its fd's reserve buffer and the kernel's limit of 16
commands per fd (EDOM) is never reached.  A block device (``/dev/sdX``) or
a bsg node (``/dev/bsg/H:C:T:L``, through ``<linux/bsg.h>``'s v4 header) is
driven synchronously through the ``SG_IO`` ioctl only.
"""

from __future__ import annotations

import collections
import errno as _errno
import logging
import os
import stat
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple, TypeVar, cast

from sgpy import _binding, _check, _interrupt, _urls
from sgpy import safety as _safety
from sgpy.cdb.base import Command as _Command
from sgpy.constants import DEFAULT_TIMEOUT_MS, Direction
from sgpy.devices import read_sysfs_int
from sgpy.errors import (
    CdbLengthError,
    ChannelClosed,
    CommandTimeout,
    DeviceGone,
    InheritedChannel,
    EncodeError,
    IllegalRequest,
    NotAnSgDevice,
    SgError,
    TaskFailed,
    TransferTooLarge,
    UnitAttention,
)
from sgpy.io import UNSET as _UNSET
from sgpy.io import Header, Input, Io, NoDirectionIo, Output, log_finished, new_io, raise_first_failure
from sgpy.io import log_cached as _log_cached
from sgpy.io import log_enabled as _log_enabled
from sgpy.reactor import WATCHDOG_GRACE, Reactor, default_reactor
from sgpy.transport import GONE_ERRNOS as _GONE_ERRNOS
from sgpy.transport import SgFd, SgPool, Transport
from sgpy.results import VARIABLE_LENGTH as _VARIABLE


if TYPE_CHECKING:  # pragma: no cover
    from sgpy._command_types import Commands
    from sgpy.cdb.base import Command
    from sgpy.job import Job

#: The answer type of the command being executed (``Io[_R].result``).
_R = TypeVar("_R")

__all__ = ["Channel", "DEFAULT_MAX_FDS", "UNIT_ATTENTIONS_KEPT"]

#: Default size of a channel's fd pool: one in-flight command per fd up to
#: this queue depth, each on its fd's reserve buffer.
DEFAULT_MAX_FDS = 16

#: Enum members read through their class are slow (a descriptor): hot paths use this.
_FROM_DEVICE = Direction.FROM_DEVICE
_TO_DEVICE = Direction.TO_DEVICE
_IO_CLASS = {Direction.NONE: NoDirectionIo, Direction.FROM_DEVICE: Input, Direction.TO_DEVICE: Output}
_DXFER = _binding.DXFER
_DEBUG = logging.DEBUG
#: Data-in buffers of execute_many's batches at least this long come from
#: slabs (:class:`sgpy._binding.BufferSlabs`); shorter ones are pymalloc's,
#: whose arenas already go back when empty (Objects/obmalloc.c).
_SLAB_MIN = 513
_OPEN_FLAGS = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC
#: How many unit attentions a channel keeps in :attr:`Channel.unit_attentions`.
UNIT_ATTENTIONS_KEPT = 64
#: How often a command sgpy sends on its own behalf is sent again after a
#: unit attention (a target may have several queued: one per event).
_UA_RETRIES = 10
#: Transfer lengths a channel remembers per (command class, CDB, data size)
#: for the current block size (see _make_io).
_XFER_CACHE_MAX = 4096
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
#: Commands a channel remembers for :meth:`Channel.execute`'s fast path (each entry holds its command).
_PLAIN_MAX = 1024
_NULL = _binding.NULL
_buffer_pointer = _binding.buffer_pointer
_sync_plain = _binding.sync_plain
_CLEAN_HEADERS = _binding.CLEAN_HEADERS
_CLEAN_MS = _binding.CLEAN_MS
_clean_header = _binding.clean_header
_MANY_UNSENT = _binding.MANY_UNSENT
_getsignal = _interrupt.getsignal
_SIGINT = _interrupt.SIGINT
_SGPY_HANDLER = _interrupt.HANDLER
_EXTRA_SIGNALS = _interrupt.EXTRA
_PENDING = _interrupt.PENDING


class _Plain:
    """A command checked once for :meth:`Channel.execute`'s fast paths (see Channel._remember).

    A plain slotted class, not a frozen attrs one: one is made for every
    command a channel sees for the first time, and attrs' frozen ``__init__``
    stores each field through ``object.__setattr__``.  Never changed once made
    but for ``desc``, packed when a batch first needs it (every thread packs
    the same bytes).
    """

    __slots__ = ("command", "resolved", "cdb", "dxfer", "length", "io_class", "desc")

    def __init__(self, command: Any, resolved: Any, cdb: bytes, dxfer: int, length: int, io_class: Any) -> None:
        self.command = command  # the command as given (its id is the key)
        self.resolved = resolved  # the command for the channel's block size (the IO's command)
        self.cdb = cdb
        self.dxfer = dxfer  # the kernel's data direction
        self.length = length  # bytes read (0: no data)
        self.io_class = io_class  # NoDirectionIo or Input
        self.desc: Optional[bytes] = None  # for execute_many's batches: see descriptor()

    def descriptor(self) -> bytes:
        """The command packed for a batch in C (:func:`sgpy._binding.many_descriptor`), kept."""
        desc = self.desc
        if desc is None:
            desc = self.desc = _binding.many_descriptor(self.dxfer, self.cdb, self.length)
        return desc


def _open(path: str, flags: int = _OPEN_FLAGS) -> int:
    try:
        return os.open(path, flags)
    except PermissionError as exc:
        raise PermissionError(
            exc.errno,
            f"cannot open {path}: permission denied; sgpy needs read and write access to it "
            "(run as root, or be in the group that owns it, usually 'disk')",
            path,
        ) from None
    except FileNotFoundError as exc:
        raise FileNotFoundError(exc.errno, f"{path} does not exist (is the device attached? see sgpy.devices())",
                                path) from None


def _close_quietly(fd: int) -> None:
    """Close ``fd``, ignoring errors (it is one of ours and no thread uses it any more)."""
    try:
        os.close(fd)
    except OSError:
        pass


def _is_bsg(rdev: int) -> bool:
    """True when the character device ``rdev`` belongs to the bsg driver (from sysfs)."""
    link = f"/sys/dev/char/{os.major(rdev)}:{os.minor(rdev)}/subsystem"
    try:
        return os.path.basename(os.readlink(link)) == "bsg"
    except OSError:
        return False


class CommandNamespace:
    """``channel.cmd``: every command class, executed on the channel when called.

    ``channel.cmd.Read10(lba=0, transfer_length=1, async_=True)`` builds
    ``sgpy.command.Read10`` and executes it.  Subclasses change what a call
    does by overriding :meth:`_bind` (the asyncio bridge returns coroutines).
    """

    __slots__ = ("_channel", "_cache")

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._cache: Dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self._cache[name]
        except KeyError:
            pass
        from sgpy import command as _command

        cls = getattr(_command, name, None)
        if not isinstance(cls, type):
            raise AttributeError(f"sgpy.command has no command named {name!r}")
        call = self._bind(cls)
        call.__name__ = name
        self._cache[name] = call
        return call

    def _bind(self, cls: Any) -> Callable[..., Any]:
        channel = self._channel

        def call(*args: Any, async_: bool = False, timeout: Optional[int] = None, **fields: Any) -> Io:
            if "async" in fields:  # the original spelling, via **{"async": True}
                async_ = bool(fields.pop("async"))
            return channel.execute(cls(*args, **fields), async_=async_, timeout=timeout)

        call.__doc__ = f"Execute {cls.__name__} on this channel (see sgpy.command.{cls.__name__})."
        return call

    def __dir__(self) -> List[str]:
        from sgpy import command as _command

        return sorted(c.__name__ for c in _command.all_commands())


class Channel:
    """A device and the commands sent to it; see the module docstring.

    Create with :meth:`from_path` or :meth:`from_fd`; close with
    :meth:`close` or a ``with`` block.
    """

    #: True for sg channels: :meth:`execute` may submit straight to an idle fd.
    _fast = False
    _num_blocks: Optional[int] = None
    #: True in a child process that inherited this channel through fork() (see _inherit).
    _inherited = False
    _xfer_cache: Optional[Dict[Any, Any]] = None  # set by __init__ (subclasses that skip it go without)
    #: The flag close() sets to stop execute_many's C loop (sg channels, set by __init__).
    _stop: Any = None
    #: ``id(cmd) -> _Plain``: commands checked once for :meth:`execute`'s synchronous fast path
    #: (set for sg, block and bsg channels; None: no fast path).
    _plain: Optional[Dict[int, "_Plain"]] = None

    #: Where :attr:`max_transfer` comes from, for the TransferTooLarge message.
    _limit_source = "sg's 256 MiB limit or the device queue's max_hw_sectors_kb"

    #: The CDB lengths this transport carries, ``(shortest, longest)`` in
    #: bytes; a command outside them is refused before anything is sent
    #: (:class:`~sgpy.errors.CdbLengthError`).  The kernel's SG_IO paths
    #: copy a CDB into the 32 bytes of ``struct scsi_cmnd``'s ``cmnd`` and
    #: refuse a longer one with EINVAL (drivers/scsi/sg.c, sg_start_req;
    #: drivers/scsi/scsi_ioctl.c and scsi_bsg.c likewise); sg's v3 interface
    #: refuses one under 6 bytes with EMSGSIZE (sg.c, sg_new_write), and 6
    #: bytes is SCSI's shortest CDB (SPC-5 4.2.5) on block and bsg nodes
    #: too.  A submission slot holds 32 bytes (SGPY_CDB_MAX, sgpy/_sg.c).
    cdb_lengths: Tuple[int, int] = (6, 32)
    #: Who sets :attr:`cdb_lengths`, for the CdbLengthError message.
    _cdb_source = "the Linux SCSI midlayer (struct scsi_cmnd holds 32 CDB bytes; sg needs at least 6)"

    def __init__(
        self,
        fd: int,
        path: str,
        *,
        reactor: Optional[Reactor] = None,
        block_size: Optional[int] = None,
        max_fds: int = DEFAULT_MAX_FDS,
        timeout: int = DEFAULT_TIMEOUT_MS,
        read_only: bool = False,
        policy: Optional[_safety.Policy] = None,
        reissue: bool = True,
        owns_fd: bool = True,
    ) -> None:
        # Every argument is checked before the channel takes anything.
        _check.whole(max_fds, "max_fds")
        timeout = _check.timeout_ms(timeout)
        policy = _check.policy(policy)
        block_size = _check.block_size(block_size)
        self.path = path
        self._timeout = timeout
        self.read_only = read_only
        #: The safety policy (:class:`sgpy.safety.Policy`) commands must pass; None lets all
        #: through.  ``read_only=True`` means :data:`sgpy.safety.READ_ONLY`.
        self.policy = policy
        self.reissue = reissue
        #: Unit attentions sgpy met and cleared on its own behalf (decoded
        #: :class:`sgpy.sense.SenseData`, oldest first, the last
        #: :data:`UNIT_ATTENTIONS_KEPT`): see :meth:`execute_own`.
        self.unit_attentions: Deque[Any] = collections.deque(maxlen=UNIT_ATTENTIONS_KEPT)
        self._block_size = block_size
        self._num_blocks = None
        self._closed = False
        self._owns_fd = owns_fd
        self._dxfer = _DXFER
        self._xfer_cache = {}
        self._max_transfer: Optional[int] = None
        self._sync_callers: Deque[_binding.SyncCaller] = collections.deque()
        self._sync_fds: List[int] = []
        # Synchronous SG_IO calls run without the reactor's lock, on fds
        # close() must not close under them (the number could then name
        # another device's file when the ioctl is made).  A call registers in
        # _sync_busy (one entry, its timeout) before it looks at _closed, and
        # close() sets _closed before it looks at _sync_busy: with deque
        # appends and removes atomic under the GIL (deques, not lists: a
        # list emptied and filled again reallocates each time), one of the two always
        # sees the other, so a call either starts on an fd close() will wait
        # for, or refuses (ChannelClosed).  Idle callers wait in
        # _sync_callers; a caller still out when close() gave up waiting
        # closes its own fd when it comes back (_give_back).  _use_lock is
        # only for close()'s wait and the rare paths (a new caller, the last
        # one out after close()).
        self._use_lock = threading.Lock()
        self._sync_idle = threading.Condition(self._use_lock)
        self._sync_busy: Deque[int] = collections.deque()
        self._orphaned = False  # close() is over: callers still out close their fds themselves
        self._stop = _binding.new_flag()
        self._fd_closed = False  # block/bsg: the shared fd was closed (by close() or the last caller out)
        #: Every command, executed on this channel when called: ``channel.cmd.Read10(lba=0, transfer_length=1)``.
        self.cmd: Commands = cast("Commands", CommandNamespace(self))
        st = os.fstat(fd)
        if stat.S_ISBLK(st.st_mode):
            self.kind = "block"
        elif stat.S_ISCHR(st.st_mode) and _is_bsg(st.st_rdev):
            self.kind = "bsg"
        elif stat.S_ISCHR(st.st_mode):
            try:
                self.sg_version = _binding.version_num(fd)
            except OSError:
                raise NotAnSgDevice(
                    _errno.ENOTTY,
                    f"{path} is a character device but not an sg or bsg device (SG_GET_VERSION_NUM failed); "
                    "use its /dev/sgN node (see sgpy.devices())",
                ) from None
            self.kind = "sg"
        else:
            raise NotAnSgDevice(_errno.ENOTTY, f"{path} is not a device node (sg, bsg or block device)")
        #: Block devices and bsg nodes take synchronous SG_IO only.
        self.sync_only = self.kind != "sg"
        self._fd = fd
        self.reactor = reactor if reactor is not None else default_reactor()
        #: The queue, endpoints and counts of this channel's commands, as the reactor drives them
        #: (:mod:`sgpy.transport`): a pool of sg fds, or none for block and bsg nodes.
        self.transport: Transport
        if self.kind == "sg":
            self.transport = SgPool(path, self.reactor, max_fds=max_fds, open_fd=self._open_another_fd,
                                    reissue=self._wants_reissue, on_close=self.close, on_inherit=self._inherit,
                                    name=repr(self))
        else:
            self.transport = Transport(path, self.reactor, reissue=self._wants_reissue, on_close=self.close,
                                       on_inherit=self._inherit, name=repr(self))
            self.transport.max_fds = max_fds
        self.reactor.add_transport(self.transport)
        if self.kind == "sg":
            self.transport.add_fd(fd)  # type: ignore[attr-defined]  # an SgPool
            self._fast = True
        self._plain = {}

    # -- construction --------------------------------------------------------

    @classmethod
    def from_path(cls, path: str, **options: Any) -> "Channel":
        """Open ``path`` (``/dev/sgN``, or ``/dev/sdX`` for synchronous use).

        An ``iscsi://`` URL opens an iSCSI channel (as :meth:`from_url`), so
        one call opens either kind.  Options: ``reactor``, ``block_size`` (else learned with READ
        CAPACITY when first needed), ``max_fds`` (fd pool size, default 16),
        ``timeout`` (ms, default 60000), ``read_only`` (refuse commands that
        change data), ``policy`` (a :class:`sgpy.safety.Policy`: which commands may
        change or destroy data), ``reissue`` (re-issue variable-length answers once with
        the length the device asked for; default True).
        """
        if isinstance(path, str) and "://" in path:
            opener = _urls.opener_for(path)
            if opener is not None:
                return opener(path, **options)
        fd = _open(path)
        try:
            return cls(fd, path, **options)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "Channel":
        """Open ``iscsi://[user%password@]host[:port]/target-iqn/lun`` (see :mod:`sgpy.iscsi`).

        Anything that is not an ``iscsi://`` URL is a device path and goes to
        :meth:`from_path`, so callers may pass either.
        """
        opener = _urls.opener_for(url)
        if opener is not None:
            return opener(url, **options)
        return cls.from_path(url, **options)

    @classmethod
    def from_fd(cls, fd: int, *, close: bool = False, **options: Any) -> "Channel":
        """Use an fd already open on a device; ``close=True`` hands it over to the channel."""
        path = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else f"fd:{fd}"
        return cls(fd, path, owns_fd=close, **options)

    def __repr__(self) -> str:
        return f"Channel({self.path!r})"

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the fd pool -----------------------------------------------------------

    def _open_another_fd(self) -> int:
        """One more fd on the device (for the pool, a synchronous caller, a job).

        Never for a closed channel (:class:`ChannelClosed`): close() closes
        the channel's first fd under the reactor's lock, so the
        ``/proc/self/fd`` fallback cannot reopen whatever file got its number.
        """
        with self.reactor.lock:
            if self._closed:
                raise self._closed_error()
            return _open(self.path if os.path.exists(self.path) else f"/proc/self/fd/{self._fd}")

    def open_fd(self) -> int:
        """Open one more fd on the device, owned by the caller (a job's own fds, for instance).

        Raises ChannelClosed (InheritedChannel after fork()) once the channel
        is closed, so the fallback through ``/proc/self/fd`` can never open
        another file that took the number of the channel's first fd.
        """
        return self._open_another_fd()

    # -- properties ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the device vanished)."""
        return self._closed

    @property
    def gone(self) -> bool:
        """True once the device vanished (unplugged, removed): every command fails with DeviceGone."""
        return self.transport.gone

    @property
    def outstanding(self) -> int:
        """Commands (and jobs) of this channel handed over and not yet finished."""
        return self.transport.outstanding

    @property
    def submitted(self) -> int:
        """Commands of this channel the kernel (or target) accepted."""
        return self.transport.submitted

    @property
    def max_fds(self) -> int:
        """The most fds the channel's pool opens on the device (lowered when an open fails)."""
        return self.transport.max_fds

    @max_fds.setter
    def max_fds(self, value: int) -> None:
        self.transport.max_fds = _check.whole(value, "max_fds")

    @property
    def timeout(self) -> int:
        """The command timeout in milliseconds (1 to 2**32-1) unless a call gives ``timeout=``.

        Checked when set (ValueError or TypeError), so a bad value never
        reaches a submission slot.
        """
        return self._timeout

    @timeout.setter
    def timeout(self, value: int) -> None:
        self._timeout = _check.timeout_ms(value)

    @property
    def block_size(self) -> int:
        """The logical block size, from READ CAPACITY(16) (or (10)) on first use."""
        if self._block_size is None:
            self._block_size = self._learn_block_size()
        return self._block_size

    @block_size.setter
    def block_size(self, value: int) -> None:
        self._block_size = value
        if self._xfer_cache is not None:
            self._xfer_cache = {}
        if self._plain is not None:
            self._plain = {}

    @property
    def num_blocks(self) -> int:
        """Logical blocks on the medium (READ CAPACITY's last LBA + 1), learned on first use."""
        if self._num_blocks is None:
            bs = self._learn_block_size()
            if self._block_size is None:
                self._block_size = bs
        return int(self._num_blocks or 0)

    @_interrupt.entry
    def execute_own(self, cmd: Any) -> Io:
        """Execute a command sgpy sends on its own behalf, through unit attentions.

        A device reports an event (power on, reset, a new login, changed
        capacity or mode parameters...) by ending the next command with
        CHECK CONDITION, sense key UNIT ATTENTION, without running it; the
        report clears that condition (SAM-6 5.14, SPC-5 4.5.6 and 5.14).  A
        command sgpy sends for itself (READ CAPACITY to learn the block size,
        TEST UNIT READY after an iSCSI login) must not fail the caller's
        command for that: the unit attention is recorded in
        :attr:`unit_attentions` and the command sent again (at most
        :data:`_UA_RETRIES` times).  Returns the last IO, whose ``error`` the
        caller inspects (the verify handler is ``might_fail``).
        """
        from sgpy.handler import might_fail

        io = self.execute(cmd, verify_handler=might_fail)
        for _ in range(_UA_RETRIES):
            if not isinstance(io.error, UnitAttention):
                break
            self.unit_attentions.append(io.sense)
            io = self.execute(cmd, verify_handler=might_fail)
        return io

    def _learn_block_size(self) -> int:
        from sgpy import command as _command

        io = self.execute_own(_command.ReadCapacity16(allocation_length=32))
        if io.error is None and len(io.data) >= 12:
            # SBC-4 table 71: RETURNED LOGICAL BLOCK ADDRESS, LOGICAL BLOCK LENGTH
            self._num_blocks = int.from_bytes(io.data[0:8], "big") + 1
            return int.from_bytes(io.data[8:12], "big")
        if io.error is not None and not isinstance(io.error, IllegalRequest):
            raise io.error
        io = self.execute_own(_command.ReadCapacity10())
        if io.error is not None:
            raise io.error
        if len(io.data) < 8:
            raise TaskFailed(f"{self.path}: READ CAPACITY(10) returned {len(io.data)} bytes", io=io)
        self._num_blocks = int.from_bytes(io.data[0:4], "big") + 1  # SBC-4 table 69
        return int.from_bytes(io.data[4:8], "big")

    @property
    def max_transfer(self) -> int:
        """Largest single transfer in bytes: sg's limit and the device queue's ``max_hw_sectors_kb``.

        Commands above it are refused before anything is sent
        (:class:`~sgpy.errors.TransferTooLarge`).  Below it the kernel may
        still refuse a transfer it cannot map into one block-layer request
        (see :attr:`assured_transfer`).
        """
        if self._max_transfer is None:
            limit = _binding.SG_TRANSFER_LIMIT - 1
            segments = None
            for q in self._queue_dirs():
                kib = read_sysfs_int(f"{q}/max_hw_sectors_kb")
                if kib is not None:
                    limit = min(limit, kib * 1024)
                    segments = read_sysfs_int(f"{q}/max_segments")
                    break
            # Each page of a buffer fills at most one segment, so max_segments
            # pages always fit one request; more pass only where pages merge
            # into larger segments (ll_new_hw_segment and blk_rq_append_bio,
            # block/blk-merge.c and block/blk-map.c, refuse a request with more
            # than max_segments segments: EINVAL).
            assured = limit if segments is None or segments <= 0 else min(limit, segments * _PAGE_SIZE)
            self.transport.assured_transfer = assured
            self._max_transfer = limit
        return self._max_transfer

    @property
    def assured_transfer(self) -> int:
        """Largest transfer the kernel maps into one request whatever its buffer: ``max_segments`` pages.

        The device queue takes at most ``max_segments`` scatter-gather
        segments per request (sysfs ``queue/max_segments``), and a page of the
        buffer is at least one of them.  A transfer up to this size is never
        refused for its size; a larger one, up to :attr:`max_transfer`, goes
        through when the kernel's buffer pages merge into larger segments,
        which depends on the driver's segment rules (not all visible in
        sysfs): scsi_debug under Linux 6.1 takes 2048 segments of one page,
        8 MiB, and refuses 8 MiB + 4 KiB although its ``max_hw_sectors_kb``
        states no limit.  A refused transfer fails with
        :class:`~sgpy.errors.TaskFailed` naming this size.  Equal to
        :attr:`max_transfer` when sysfs does not say.
        """
        limit = self.max_transfer  # reads both from sysfs the first time
        assured = self.transport.assured_transfer
        return limit if assured is None else min(assured, limit)

    def _queue_dirs(self) -> List[str]:
        """The sysfs ``queue`` directories that may describe this channel's device, most specific first."""
        name = os.path.basename(os.path.realpath(self.path))
        base = f"/sys/class/scsi_generic/{name}/device/block"
        out = []
        try:
            for blk in os.listdir(base):
                out.append(f"{base}/{blk}/queue")
        except OSError:
            pass
        out.append(f"/sys/class/block/{name}/queue")
        return out

    # -- executing -----------------------------------------------------------

    def _make_io(self, cmd: Any, timeout: Optional[int], verify_handler: Any,
                 slabs: Optional[_binding.BufferSlabs] = None) -> Io:
        """Check ``cmd`` and the call's arguments against this channel, then build its IO.

        Everything a submission slot or the kernel would trip over is
        refused here, before the IO exists (so before any slot or count is
        taken): a non-command, a bad timeout, a CDB length the transport does
        not carry, a transfer too large, a data buffer whose size is not the
        transfer length (it may have changed since the command was built).
        ``slabs`` (a batch's): data-in buffers of at least :data:`_SLAB_MIN`
        bytes are carved from it rather than allocated one by one.
        """
        if not isinstance(cmd, _Command):
            raise TypeError(f"execute() takes a command (sgpy.command.Read10(...), RawCommand(...)), "
                            f"not {type(cmd).__name__} {cmd!r}")
        timeout = self._timeout if timeout is None else _check.timeout_ms(timeout)
        cmd, length = self._resolve(cmd)
        data = cmd.data
        view = None if data is None else memoryview(data)
        direction = cmd.direction
        cbuf: Any = None
        ptr: Any = None
        off = -1
        if length:
            if direction is _FROM_DEVICE:
                if slabs is not None and _SLAB_MIN <= length <= _binding.SLAB_BYTES:
                    view, off, ptr = slabs.take(length)  # the mapping's view: data_buf made when asked
                else:
                    buf = bytearray(length)
                    view = memoryview(buf)
                    cbuf = buf
            elif view is None:
                raise EncodeError(f"{cmd.name}: {length} bytes to send but no data=; pass data=")
            elif view.nbytes != length or not view.c_contiguous:
                raise EncodeError(
                    f"{cmd.name}: data= holds {view.nbytes} bytes"
                    f"{'' if view.c_contiguous else ' in a non-contiguous buffer'}, but the command sends "
                    f"{length}; the buffer must be one contiguous block of exactly the transfer length "
                    "(was it resized after the command was built?)")
            else:
                cbuf = data
        io: Io[Any] = new_io(_IO_CLASS[direction], cmd, self, length, None, timeout, verify_handler)
        if length:
            # The C pointer is a buffer export of the object itself (cffi's
            # from_buffer holds a Py_buffer until it is dropped): while the IO
            # holds it a bytearray cannot be resized under the kernel
            # (BufferError), until the kernel gives the command back
            # (Io._let_go).  It is taken from the object, never from the
            # memoryview in data_buf: a memoryview with exports in a garbage
            # cycle (an IO and the exception that names it) cannot be cleared
            # by the collector (memory_clear raises BufferError), which crashed
            # the interpreter.
            io._data = view  # data_buf.tobytes(), as the original data_buf.tostring()
            io._off = off
            io._cbuf = _binding.buffer_pointer(cbuf) if ptr is None else ptr
        return io

    def _resolve(self, cmd: Any) -> Tuple[Any, int]:
        """Check a command against this channel; return it resolved for the block size, and its transfer length.

        The checks :meth:`_make_io` makes before building an IO: the channel
        is open, the safety policy allows the command, its CDB length is one
        the transport carries, its transfer is within :attr:`max_transfer`.
        """
        if self._closed or self.transport.gone:
            raise self._refusal(cmd)
        if self.read_only or self.policy is not None:
            _safety.check_channel(self, cmd)
        data = cmd.data
        view = None if data is None else memoryview(data)
        if cmd.needs_block_size:
            # Commands are values, often sent many times (or rebuilt with the
            # same fields): remember the transfer length of each resolved CDB
            # for the current block size (bounded).  The class, the CDB bytes
            # and the data's size decide for_block_size's answer; the entry
            # holds none of the command's objects, so no payload is kept.
            cache = self._xfer_cache
            cdb = cmd._cdb
            key = None
            length = -1
            if cdb is not None and cache is not None:
                key = (cmd.__class__, cdb, -1 if view is None else view.nbytes)
                length = cache.get(key, -1)
            if length < 0:
                bs = self.block_size
                resolved = cmd.for_block_size(bs)
                length = resolved.transfer_bytes(bs)
                if key is not None and cache is not None and resolved is cmd:
                    if len(cache) >= _XFER_CACHE_MAX:
                        cache.clear()
                    cache[key] = length
                cmd = resolved
        else:
            length = cmd.transfer_bytes()
        cdb = cmd._cdb  # the packed CDB (Command.cdb without its property call); None: unresolved
        n = len(cdb) if cdb is not None else len(cmd.cdb)  # the property raises the EncodeError
        lo, hi = self.cdb_lengths
        if n < lo or n > hi:
            raise self._cdb_refused(cmd, n)
        limit = self._max_transfer
        if limit is None:
            limit = self.max_transfer
        if length > limit:
            raise self._too_large(cmd, length)
        return cmd, length

    def _closed_error(self) -> ChannelClosed:
        """What a closed channel raises: ChannelClosed, or InheritedChannel in a child after fork()."""
        if self._inherited:
            return InheritedChannel(
                f"{self!r} was inherited through fork(): its fds carry the parent's commands; open the "
                "device again in this process (Channel.from_path) and close this one")
        return ChannelClosed(f"{self!r} is closed")

    def _refusal(self, cmd: Any) -> SgError:
        """The error for a command offered to a closed channel or a vanished device."""
        if self._closed:
            return self._closed_error()
        return DeviceGone(f"{self.path}: the device is gone", command=cmd, host_status=1)

    def _cdb_refused(self, cmd: Any, n: int) -> EncodeError:
        """The error for a CDB of ``n`` bytes outside :attr:`cdb_lengths`, naming both and the transport."""
        lo, hi = self.cdb_lengths
        return CdbLengthError(
            f"{cmd.name}: its CDB has {n} bytes, but {self.path} ({self.kind} transport) carries CDBs of {lo} "
            f"to {hi} bytes ({self._cdb_source}); nothing was sent")

    def _too_large(self, cmd: Any, length: int) -> TransferTooLarge:
        """The error for a transfer above :attr:`max_transfer`, naming the limit and where it comes from."""
        return TransferTooLarge(
            f"{cmd.name} would move {length} bytes; {self.path} accepts at most {self.max_transfer} "
            f"bytes in one command ({self._limit_source}): split the transfer")

    @_interrupt.protected
    def execute(
        self,
        cmd: Command[_R],
        *,
        async_: bool = False,
        timeout: Optional[int] = None,
        verify_handler: Any = None,
        **options: Any,
    ) -> Io[_R]:
        """Execute one command.

        Synchronous (the default): returns the finished IO, or raises what its
        verify handler raised (by default, the failure).  ``async_=True``
        (also spelled ``**{"async": True}``): returns the pending IO at once.
        ``timeout`` is in milliseconds; ``verify_handler`` overrides the
        command's own.
        """
        # The entry point's work (_interrupt.entry) done here rather than by its
        # wrapper, whose extra call costs as much as the rest of a plain
        # command's Python: sgpy's SIGINT handler put in front, and what it
        # held back run at the end.  The last statement of the finally clause
        # reads a list and calls nothing, so a signal landing after it runs in
        # the caller's frame, not held here (see _interrupt.deliver).
        handler = _getsignal(_SIGINT)
        if handler is not _SGPY_HANDLER and callable(handler) or _EXTRA_SIGNALS:
            _interrupt.ensure()
        made: Optional[Io] = None  # an IO the fast paths made for cmd and did not send
        try:
            plain = self._plain
            if plain is not None and not async_ and timeout is None and verify_handler is None and not options:
                # The synchronous fast path: a command seen before (checked once,
                # see _remember), no handler, no policy, a caller free.  Any
                # other case takes the general path below, which checks everything
                # again and raises what is wrong.
                p = plain.get(id(cmd))
                if p is None or p.command is not cmd:
                    p, made = self._first_sight(cmd)
                if p is not None and not cmd.handlers and not self.read_only and self.policy is None:
                    timeout = self._timeout
                    busy = self._sync_busy
                    busy.append(timeout)  # registered before _closed is read: see __init__
                    callers = self._sync_callers
                    if callers and not self._closed and not self.transport.gone:
                        try:
                            caller = callers.pop()
                        except IndexError:  # another thread took the last one meanwhile
                            caller = None
                        if caller is not None:
                            length = p.length
                            buf: Any = None
                            if length:
                                buf = bytearray(length)
                                ptr = _buffer_pointer(buf)
                            else:
                                ptr = _NULL
                            h: Optional[Header] = None
                            cdb = p.cdb
                            try:
                                rc = _sync_plain(caller.fd, caller.bsg, caller.slot, p.dxfer, cdb, len(cdb), ptr,
                                                 length, timeout)
                                if rc == -1:
                                    h = caller.outcome()  # read before the slot is given back
                            finally:
                                # _give_back, inlined for its common path
                                callers.append(caller)
                                if self._orphaned:
                                    self._drop_caller(caller)
                                busy.remove(timeout)
                                if self._closed:
                                    self._sync_call_ended()
                            if rc >= 0:
                                # Reactor.finish and done for a plain success with no handler
                                # to run and nobody else holding the IO yet: the same marks
                                # and counts as _sync_finished's, on an IO made finished
                                # (new_io's fields, with their final values).
                                io = p.io_class()
                                io.command = p.resolved
                                io.channel = self
                                io.timeout = timeout
                                io.returned = True
                                io.length = length
                                io._data = buf  # data_buf, its view made when asked
                                io._off = -1 if buf is None else 0
                                io.hdr = (_CLEAN_HEADERS[rc] if rc < _CLEAN_MS else None) or _clean_header(rc)
                                io.error = io.sense = io.exception = io.verify_handler = io._cbuf = None
                                io._fdstate = io._callbacks = None
                                io._pack_id = 0
                                io._slot = -1
                                io._submitted_at = 0.0
                                io._abandoned = io._reissued = False
                                io._result = _UNSET
                                io._settled = True
                                # The counts without the reactor's lock: no call and no
                                # backward jump between the three statements, so no other
                                # thread runs among them (CPython 3.11+ hands the GIL over
                                # only where it checks its eval breaker: a function's start,
                                # a backward jump, after a call; Python/ceval.c), and none
                                # of them is split by a thread that holds the lock.
                                reactor = self.reactor
                                t = self.transport
                                reactor.submitted += 1
                                t.submitted += 1
                                reactor.completed += 1
                                if _log_cached(_DEBUG) is not False and _log_enabled(_DEBUG):
                                    log_finished(io)
                                return io
                            io = new_io(p.io_class, p.resolved, self, length, buf, timeout)
                            if buf is not None:
                                io._off = 0
                            if h is None:  # the ioctl failed: nothing was sent, or the device is gone
                                try:
                                    caller.fail(-1 - rc, cdb)
                                except OSError as exc:
                                    raise self._sg_io_error(exc, io) from None
                            self._sync_finished(io, h)  # type: ignore[arg-type]
                            if not io.returned:  # re-issued with a larger allocation length, through the pool
                                self.reactor.wait([io])
                            if io.exception is not None:
                                raise io.exception
                            return io
                    self._give_back(None, timeout)  # not taken: the general path decides
                    timeout = None
            elif async_ and self._fast and plain is not None and timeout is None and verify_handler is None \
                    and not options and not self.read_only and self.policy is None:
                # The asynchronous fast path: a command seen before (checked
                # once), no policy; its handlers run as on the general path.
                # Any other case takes the general path, which checks
                # everything again and raises what is wrong.
                p = plain.get(id(cmd))
                if p is None or p.command is not cmd:
                    p, made = self._first_sight(cmd)
                    if p is None and made is not None:
                        # Checked but not for this path (a write, a variable-length
                        # answer, a verify handler): the general path's submission.
                        self._submit(made, True)
                        return made
                if p is not None:
                    length = p.length
                    io = new_io(p.io_class, p.resolved, self, length, None, self._timeout)
                    if length:
                        buf = bytearray(length)
                        io._data = buf
                        io._off = 0
                        io._cbuf = _buffer_pointer(buf)
                    self._submit(io, True)
                    return io
            return self._execute(cmd, async_, timeout, verify_handler, options, made)
        finally:
            if _PENDING:
                _interrupt.deliver(2)

    @_interrupt.protected
    def _execute(self, cmd: Any, async_: bool, timeout: Optional[int], verify_handler: Any,
                 options: Dict[str, Any], made: Optional[Io] = None) -> Io:
        """execute()'s general path: every kind of call, every check.

        ``made``: the IO :meth:`_first_sight` made for ``cmd`` (the same
        checks, with no timeout or verify handler given), used rather than
        checking again.
        """
        if options:
            if "async" in options:
                async_ = bool(options.pop("async"))
            if options:
                raise TypeError(f"execute() got unexpected keyword(s) {sorted(options)}")
        if made is not None:
            io = made
        else:
            io = self._make_io(cmd, timeout, verify_handler)
            if self._plain is not None and timeout is None and verify_handler is None:
                self._remember(cmd, io.command, io.length)
        if self.sync_only:
            if async_:
                raise SgError(f"{self.path} is a {self.kind} device: it takes synchronous SG_IO commands only; "
                              "use its sg node (/dev/sgN) for asynchronous work")
            self._execute_sg_io(io)
        elif not async_ and self.kind == "sg":
            # One SG_IO ioctl on a caller's own fd: one system call, and no
            # waiting behind commands queued for the pool.
            self._execute_sg_io(io)
            if not io.returned:  # re-issued with a larger allocation length, through the pool
                self.reactor.wait([io])
        else:
            self._submit(io, async_)
            if async_:
                return io
            if not io.returned:
                self.reactor.wait([io])
        if io.exception is not None:
            raise io.exception
        return io

    @_interrupt.protected
    def _submit(self, io: Io, async_: bool) -> None:
        """Hand ``io`` to the transport: straight to an idle fd when nothing is queued, else the queue.

        A synchronous command is read back at once when the device answered
        inside ``write()`` (scsi_debug ``delay=0``, caches).
        """
        reactor = self.reactor
        t = self.transport
        with reactor.lock:
            if self._closed or t.gone:
                # Checked again under the lock: close() or an unplug may
                # have come since the IO was made, and neither sends anything more.
                raise self._refusal(io.command)
            reactor.outstanding += 1
            t.outstanding += 1
            st: Optional[SgFd] = t.idle_fd() if self._fast and not t.queue else None  # type: ignore[attr-defined]
            if st is not None and io.length > st.reserved:
                SgPool.prepare_reserve(st, [io])
            if st is None or not st.submit_one(io):
                t.queue.append(io)
                t.pump()
            else:
                t.submitted += 1
            if not async_:
                st = io._fdstate
                if st is not None and not io.returned:
                    st.reap_one()  # delay=0 devices complete inside write()

    @_interrupt.entry
    def run(
        self,
        cmd: Any,
        *,
        async_: bool = False,
        count: Optional[int] = None,
        seconds: Optional[float] = None,
        queue_depth: int = 1,
        lba: Any = None,
        lba_range: Optional[Tuple[int, int]] = None,
        seed: Optional[int] = None,
        stop_on_error: bool = True,
        timeout: Optional[int] = None,
        latency: bool = True,
        max_fds: Optional[int] = None,
        max_errors: int = 100,
        stamp: Optional[int] = None,
        verify: Optional[int] = None,
        write: Any = None,
        read_percent: Optional[int] = None,
        rate_iops: Optional[int] = None,
        **options: Any,
    ) -> "Job":
        """Send ``cmd`` many times at full speed: a :class:`sgpy.job.Job` (see :mod:`sgpy.job`).

        ``count`` commands, or as many as fit in ``seconds`` (either, or both:
        whichever ends first), ``queue_depth`` in flight.  ``lba``: None (the
        template's own), ``"sequential"``, ``"random"`` (aligned to the
        command's length, over ``lba_range=(first, stop)`` blocks, default the
        whole medium), or a sequence of LBAs (sent in order, wrapping).
        ``seed`` makes random runs repeatable; ``stop_on_error`` (default)
        ends the job at the first failure; ``latency`` records a latency
        histogram.  ``stamp=TAG`` (write jobs) starts every block written
        with its LBA and TAG; ``verify=TAG`` (read jobs) checks every block
        read holds exactly that, or fails with :class:`~sgpy.errors.DataMismatch`.  ``write=`` (a write
        template beside a read template) makes a mixed job, ``read_percent`` (default 50) of its commands
        reads, the rest writes; ``rate_iops=N`` sends at most N commands per second.  Synchronous (default): returns the finished job, or raises
        its first failure; ``async_=True``: returns the running job, driven by
        the reactor.
        """
        from sgpy.job import make_job

        if options:
            if "async" in options:
                async_ = bool(options.pop("async"))
            if options:
                raise TypeError(f"run() got unexpected keyword(s) {sorted(options)}")
        job = make_job(self, cmd, count=count, seconds=seconds, queue_depth=queue_depth, lba=lba,
                  lba_range=lba_range, seed=seed, stop_on_error=stop_on_error, timeout=timeout,
                  latency=latency, max_fds=max_fds, max_errors=max_errors, stamp=stamp, verify=verify,
                  write=write, read_percent=read_percent, rate_iops=rate_iops, sync=not async_)
        if async_:
            job._start_async()
            return job
        job._run_sync()
        if job.exception is not None:
            raise job.exception
        return job

    @_interrupt.entry
    def execute_many(self, cmds: Iterable[Command[Any]], *, async_: bool = False, timeout: Optional[int] = None,
                     **options: Any) -> List[Io[Any]]:
        """Execute commands in order, submitted in batches; return their IOs in input order.

        Synchronous: waits for all of them, then raises the first failure
        (every IO has returned by then; the exception's ``batch`` holds the
        list).  ``async_=True``: returns the pending IOs at once.
        """
        if "async" in options:
            async_ = bool(options.pop("async"))
        if options:
            raise TypeError(f"execute_many() got unexpected keyword(s) {sorted(options)}")
        ios: Optional[List[Io[Any]]] = None
        if not async_ and self._plain is not None and self.kind == "sg":
            cmds = cmds if isinstance(cmds, list) else list(cmds)  # an iterator is read once
            if len(cmds) > 1 and not self.read_only and self.policy is None:
                ios = self._many(cmds, timeout)  # None: not a batch of plain commands
        if ios is None:
            ios = self._submit_many(cmds, async_, timeout)
            if async_:
                return ios
        raise_first_failure(ios)
        return ios

    def _submit_many(self, cmds: Iterable[Command[Any]], async_: bool, timeout: Optional[int]) -> List[Io[Any]]:
        """execute_many()'s general path: every command's IO through the engine; waits unless ``async_``."""
        slabs = _binding.BufferSlabs()  # the batch's data-in buffers: memory a dropped batch gives back
        ios = [self._make_io(c, timeout, None, slabs) for c in cmds]
        del slabs
        if self.sync_only:
            if async_:
                raise SgError(f"{self.path} is a {self.kind} device: asynchronous work needs its sg node")
            for io in ios:
                self._execute_sg_io(io)
        else:
            reactor = self.reactor
            t = self.transport
            with reactor.lock:
                if self._closed or t.gone:
                    raise self._refusal(ios[0].command if ios else None)
                t.begin(len(ios))
                t.queue.extend(ios)
                t.pump()
            if not async_:
                reactor.wait(ios)
        return ios

    def _many(self, cmds: List[Any], timeout: Optional[int]) -> Optional[List[Io[Any]]]:
        """execute_many()'s synchronous path for a batch of plain commands: sent and collected in C.

        Plain: each command passes the general path's checks
        (:meth:`_resolve`, or remembered from an earlier call), writes no
        data, has no verify handler of its own, no variable-length answer
        and no handler (:meth:`_plain_entry`); otherwise None, and the
        general path takes the batch.  The commands go out in order over fds
        of synchronous callers (one per 16 commands in flight, at most
        ``max_fds``), kept busy for the batch as for ``SG_IO``, so close()
        never closes them under the loop; close()
        stops the sending (``_stop``), the commands not yet sent then fail
        with ChannelClosed.  A plain success never enters Python until the
        batch is over; any other completion is classified as it comes.
        """
        plain = self._plain
        if plain is None:
            return None
        ps: List[_Plain] = []
        room = _PLAIN_MAX - len(plain)
        for c in cmds:
            p = plain.get(id(c))
            if p is None or p.command is not c:
                # Not seen yet: checked here, without the IO the general path
                # builds; remembered while there is room (a batch does not empty
                # the cache: its commands are often made for it and sent once).
                if not isinstance(c, _Command):
                    return None
                try:
                    resolved, length = self._resolve(c)
                except Exception:
                    return None  # the general path raises it in its own words
                p = self._plain_entry(c, resolved, length)
                if p is None:
                    return None
                if room > 0:
                    plain[id(c)] = p
                    room -= 1
            if c.handlers:
                return None
            ps.append(p)
        timeout = self._timeout if timeout is None else _check.timeout_ms(timeout)
        n = len(ps)
        views: List[Any] = [None] * n  # each read's buffer: a mapping's view, or its own bytearray
        offs: List[int] = [-1] * n  # where in it its bytes begin (see Io.data_buf)
        pointers: Any = None
        slabs: Optional[_binding.BufferSlabs] = None
        for i, p in enumerate(ps):
            length = p.length
            if length:
                if pointers is None:
                    pointers = _binding.new_pointers(n)
                if _SLAB_MIN <= length <= _binding.SLAB_BYTES:
                    if slabs is None:
                        # Sized to the batch's reads and faulted in at once (see BufferSlabs).
                        slabs = _binding.BufferSlabs(sum([q.length for q in ps[i:]
                                                          if _SLAB_MIN <= q.length <= _binding.SLAB_BYTES]))
                    views[i], offs[i], pointers[i] = slabs.take(length)
                else:
                    buf = bytearray(length)
                    views[i] = buf
                    offs[i] = 0
                    pointers[i] = _buffer_pointer(buf)
        del slabs
        want = min(max(1, self.transport.max_fds), -(-n // _binding.SG_MAX_QUEUE), _binding.MANY_FDS_MAX)
        callers = self._take_callers(want, timeout)
        if not callers:
            return None  # no fd could be had: the general path says why
        stall = min(timeout + int(WATCHDOG_GRACE * 1000), 0x7FFFFFFF)  # ms, a C int
        try:
            descs = b"".join([p.desc or p.descriptor() for p in ps])
            run = _binding.ManyRun([c.fd for c in callers], descs, n, pointers, timeout, stall, self._stop)
        except BaseException:  # MemoryError: nothing was sent
            for caller in callers:
                self._give_back(caller, timeout)
            raise
        parked: Dict[int, Io] = {}
        try:
            err = self._many_run(run, ps, views, offs, parked, timeout)
        except BaseException:
            # Ctrl-C (or a signal handler's exception) ends the batch at once, as
            # it ends SG_IO: what is in the kernel is left to it as orphans.
            self._many_over(run, callers, timeout, ps, views, offs, parked, None)
            raise
        return self._many_over(run, callers, timeout, ps, views, offs, parked, err)

    def _take_callers(self, want: int, timeout: int) -> List[_binding.SyncCaller]:
        """Up to ``want`` synchronous callers, each registered busy (ChannelClosed on a closed channel)."""
        busy = self._sync_busy
        callers: List[_binding.SyncCaller] = []
        try:
            while len(callers) < want:
                busy.append(timeout)  # before _closed is read: see __init__
                if self._closed or self.transport.gone:
                    self._give_back(None, timeout)
                    raise self._refusal(None)
                try:
                    caller = self._sync_callers.pop()
                except IndexError:
                    try:
                        caller = self._new_sync_caller(timeout)  # gives the registration back when it fails
                    except OSError:
                        break  # fewer fds (none: the caller falls back)
                callers.append(caller)
        except BaseException:
            for caller in callers:
                self._give_back(caller, timeout)
            raise
        return callers

    @_interrupt.interruptible
    def _many_run(self, run: _binding.ManyRun, ps: List[_Plain], views: List[Any], offs: List[int],
                  parked: Dict[int, Io], timeout: int) -> int:
        """Drive ``run`` until every command is back (0) or an errno ends it.

        A vanishing device stops the sending and ends the batch once what it
        still hands back is read (its errno is returned).  Interruptible (the C loop waits in poll(), which a signal ends with
        EINTR): a handler that raises ends the batch (see :meth:`_many`).
        """
        gone = 0
        while True:
            if _PENDING:  # held back while the batch was prepared, or during a classification
                _interrupt.deliver()
            rc = run.run()
            if rc == -1:
                i, h = run.parked()
                self._many_parked(i, h, ps[i], views[i], offs[i], parked, timeout)
            elif rc == 0:
                return gone
            elif rc in _GONE_ERRNOS:
                if gone:
                    return gone  # and nothing more comes back
                # The device is going: send nothing more (on any of the channel's
                # batches), and read what it still hands back (sg_read gives out
                # completions already done before it looks at the detaching flag).
                gone = rc
                self._stop[0] = 1
            elif run.bad >= 0:  # the kernel refused that command
                self._many_refused(run.bad, rc, ps[run.bad], parked, timeout)
            elif rc != _errno.EINTR and rc != _errno.EAGAIN:  # those: the handlers ran and did not raise
                return rc

    @_interrupt.protected
    def _many_parked(self, i: int, h: Header, p: _Plain, view: Any, off: int, parked: Dict[int, Io],
                     timeout: int) -> None:
        """Command ``i`` of a batch ended otherwise than plain: classify it now (sense, retries...)."""
        io = new_io(p.io_class, p.resolved, self, p.length, view, timeout)
        io._off = off
        parked[i] = io
        self._sync_finished(io, h)

    @_interrupt.protected
    def _many_refused(self, i: int, err: int, p: _Plain, parked: Dict[int, Io], timeout: int) -> None:
        """The kernel refused command ``i`` of a batch (``write()`` failed with ``err``): it fails, the rest go on."""
        io = new_io(p.io_class, p.resolved, self, p.length, None, timeout)
        parked[i] = io
        self._many_fail([io], lambda io: self.transport.refused(io, err), False)

    def _many_fail(self, ios: List[Io], error_of: Callable[[Io], BaseException], sent: bool) -> None:
        """Fail ``ios`` of a batch, each with ``error_of(io)``, counted as the general path counts them;
        ``sent``: the kernel had taken them."""
        reactor = self.reactor
        t = self.transport
        with reactor.lock:
            if sent:
                reactor.submitted += len(ios)
                t.submitted += len(ios)
            reactor.outstanding += len(ios)
            t.outstanding += len(ios)
            for io in ios:
                reactor.fail(io, error_of(io))

    @_interrupt.protected
    def _many_over(self, run: _binding.ManyRun, callers: List[_binding.SyncCaller], timeout: int,
                   ps: List[_Plain], views: List[Any], offs: List[int], parked: Dict[int, Io],
                   err: Optional[int]) -> List[Io]:
        """The batch is over: give the callers back, make the IOs, count them.

        ``err`` None: it was interrupted; only what was read is counted (an
        interrupted SG_IO counts nothing), and the fds still carrying
        commands are closed.  Otherwise every command gets its IO: a plain
        success made finished here, the others as they were classified;
        those left without an answer fail (:meth:`_many_error`).
        """
        busy = set(run.busy_fds())
        for f, caller in enumerate(callers):
            if f in busy:
                # Commands of the batch are still in the kernel on this fd: close
                # it (sg finishes them as orphans, copying nothing to the buffers).
                self._discard_caller(caller)
                self._give_back(None, timeout)
            else:
                self._give_back(caller, timeout)
        outs = run.outcomes()
        ios: List[Io] = []
        append = ios.append
        unsent: List[Io] = []
        inflight: List[Io] = []
        n_plain = 0
        log = _log_cached(_DEBUG) is not False and _log_enabled(_DEBUG)
        for i, d in enumerate(outs):
            if d >= 0:
                p = ps[i]
                # As execute()'s fast path: a plain success made finished.
                io = p.io_class()
                io.command = p.resolved
                io.channel = self
                io.timeout = timeout
                io.returned = True
                io.length = p.length
                io._data = views[i]  # data_buf, its view made when asked
                io._off = offs[i]
                io.hdr = (_CLEAN_HEADERS[d] if d < _CLEAN_MS else None) or _clean_header(d)
                io.error = io.sense = io.exception = io.verify_handler = io._cbuf = None
                io._fdstate = io._callbacks = None
                io._pack_id = 0
                io._slot = -1
                io._submitted_at = 0.0
                io._abandoned = io._reissued = False
                io._result = _UNSET
                io._settled = True
                n_plain += 1
                if log:
                    log_finished(io)
            else:
                got = parked.get(i)  # classified, or refused by the kernel
                if got is not None:
                    io = got
                elif err is None:
                    continue
                else:
                    p = ps[i]
                    if d == _MANY_UNSENT:
                        io = new_io(p.io_class, p.resolved, self, p.length, views[i], timeout)
                        io._off = offs[i]
                        unsent.append(io)
                    else:
                        io = new_io(p.io_class, p.resolved, self, p.length, None, timeout)
                        inflight.append(io)
            append(io)
        reactor = self.reactor
        t = self.transport
        with reactor.lock:
            reactor.submitted += n_plain
            t.submitted += n_plain
            reactor.completed += n_plain
        if err is None:
            return ios
        if inflight:
            self._many_fail(inflight, lambda io: self._many_error(io, err, timeout, True), True)
        if unsent:
            self._many_fail(unsent, lambda io: self._many_error(io, err, timeout, False), False)
        for io in parked.values():
            if not io.returned:  # re-issued with a larger allocation length, through the pool
                reactor.wait([io])
        return ios

    def _many_error(self, io: Io, err: int, timeout: int, sent: bool) -> BaseException:
        """The error of ``io``, a batch's command left without an answer when ``err`` ended the batch."""
        cmd = io.command
        if err == 0:  # the batch was stopped: close(), or the device went while another batch ran
            if self._closed:
                return ChannelClosed(f"{self.path} was closed before {cmd!r} was sent")
            err = _errno.ENODEV
        if err in _GONE_ERRNOS:
            return DeviceGone(f"{self.path}: the device is gone ({os.strerror(err)})"
                              + ("" if sent else "; the command was not sent"), io=io, command=cmd, host_status=1)
        if err == _errno.ETIMEDOUT:
            why = (f"no completion within {timeout} ms + {WATCHDOG_GRACE:g} s (execute_many's watchdog); "
                   "its fd was closed, the kernel finishes it alone")
            if sent:
                return CommandTimeout(why, io=io, command=cmd, host_status=3)
            return TaskFailed(f"not sent: a command sent before it got {why}", io=io, command=cmd)
        return TaskFailed(f"{self.path}: the batch ended: {os.strerror(err)} (errno {err})"
                          + ("" if sent else "; the command was not sent"), io=io, command=cmd)

    def _discard_caller(self, caller: _binding.SyncCaller) -> None:
        """Close ``caller``'s fd for good: commands left in the kernel on it must never be read by another call."""
        with self._use_lock:
            try:
                self._sync_fds.remove(caller.fd)
            except ValueError:
                pass
            else:
                _close_quietly(caller.fd)

    def _new_sync_caller(self, timeout: int) -> _binding.SyncCaller:
        """A caller for a synchronous command that found none free (registered busy already).

        Block and bsg nodes share the channel's fd; on an sg node each caller
        has an fd of its own, so that synchronous commands never take one of
        the 16 places of a pool fd (sg.c refuses the 17th with EDOM, SG_IO
        included).
        """
        try:
            if self.kind != "sg":
                return _binding.SyncCaller(self._fd, self.kind == "bsg")
            fd = self._open_another_fd()  # ChannelClosed once close() began
        except BaseException:
            self._give_back(None, timeout)
            raise
        with self._use_lock:
            self._sync_fds.append(fd)
        return _binding.SyncCaller(fd)

    def _give_back(self, caller: Optional[_binding.SyncCaller], timeout: int) -> None:
        """A synchronous call is over: keep ``caller`` for the next one, or, when close()
        came meanwhile, close its fd here (close() leaves the fds of callers in use to them).

        Lock-free on the common path (see __init__): the caller goes back
        before the call leaves _sync_busy, and _orphaned is read after both.
        """
        if caller is not None:
            self._sync_callers.append(caller)
            if self._orphaned:
                self._drop_caller(caller)
        self._sync_busy.remove(timeout)
        if self._closed:
            self._sync_call_ended()

    def _drop_caller(self, caller: _binding.SyncCaller) -> None:
        """close() is over and closed the callers it found: maybe not ``caller``, just given back."""
        try:
            self._sync_callers.remove(caller)
        except ValueError:
            pass  # close() took it and closed its fd
        else:
            if self.kind == "sg":
                _close_quietly(caller.fd)

    def _sync_call_ended(self) -> None:
        """A synchronous call ended on a closed channel: close() may be waiting for the last one."""
        with self._use_lock:
            if self._orphaned and self.sync_only and self._owns_fd and not self._sync_busy \
                    and not self._fd_closed:
                self._fd_closed = True
                _close_quietly(self._fd)  # the last synchronous call on the shared fd is over
            self._sync_idle.notify_all()

    def _first_sight(self, cmd: Any) -> Tuple[Optional[_Plain], Optional[Io]]:
        """Check ``cmd`` as :meth:`_make_io` does and remember it for the fast paths.

        Returns its entry, or None (the general path) with the IO the checks
        made for it, so that the general path does not check again.  The IO
        is None when the checks raised: whatever they raise is left to the
        general path, which raises it in its own words.  A command the fast
        paths take gets no IO here (they make their own).
        """
        if not isinstance(cmd, _Command):
            return None, None  # the general path raises the TypeError
        try:
            resolved, length = self._resolve(cmd)
        except Exception:
            return None, None
        entry = self._remember(cmd, resolved, length)
        if entry is not None:
            return entry, None
        try:
            return None, self._make_io(cmd, None, None)
        except Exception:
            return None, None

    def _remember(self, cmd: Any, resolved: Any, length: int) -> Optional[_Plain]:
        """Keep what the checks found for ``cmd`` (``resolved`` for the block size, moving ``length`` bytes)
        for :meth:`execute`'s fast paths; return its entry, or None when they do not take it.

        What the checks looked at depends only on the command (a frozen
        value) and on the channel's block size and transfer limit; the
        entries are dropped when the block size changes.
        """
        plain = self._plain
        if plain is None:
            return None
        entry = self._plain_entry(cmd, resolved, length)
        if entry is not None:
            if len(plain) >= _PLAIN_MAX:
                plain.clear()
            plain[id(cmd)] = entry  # the entry holds cmd: its id is not reused while the entry lives
        return entry

    def _plain_entry(self, cmd: Any, resolved: Any, length: int) -> Optional[_Plain]:
        """``cmd`` (checked; ``resolved`` for the block size, moving ``length`` bytes) for the fast paths, or None.

        They take commands that move no data or read it, with no verify
        handler of their own and no variable-length answer to re-issue (a
        handler list, which can grow, is looked at on every call).
        """
        direction = resolved.direction
        if direction is _TO_DEVICE or cmd.verify_handler is not None or cmd.name in _VARIABLE:
            return None
        return _Plain(cmd, resolved, resolved.cdb, self._dxfer[direction], length, _IO_CLASS[direction])

    def _execute_sg_io(self, io: Io) -> None:
        """The synchronous SG_IO path (block devices, bsg nodes, and sg nodes' synchronous commands).

        A caller (an fd and a reusable C header) is registered busy until it
        is given back, so close() never closes an fd a thread is inside SG_IO
        on; a closed channel hands out none (ChannelClosed), so once close()
        has seen no call busy no synchronous command of this channel can start.
        """
        timeout = io.timeout
        self._sync_busy.append(timeout)
        if self._closed:
            self._give_back(None, timeout)
            raise self._closed_error()
        try:
            caller = self._sync_callers.pop()
        except IndexError:
            try:
                caller = self._new_sync_caller(timeout)
            except OSError as exc:  # opening the caller's fd: the device may be gone
                raise self._sg_io_error(exc, io) from None
        cmd = io.command
        cbuf = io._cbuf
        try:
            # Ctrl-C ends SG_IO at once (EINTR): the kernel has the command
            # and finishes it as an orphan (drivers/scsi/sg.c, sg_ioctl_common,
            # SG_IO), so the caller gets KeyboardInterrupt, not the result
            # (SyncCaller.call is interruptible: see the end of this module).
            h = caller.call(cmd._cdb, self._dxfer[cmd.direction], _binding.NULL if cbuf is None else cbuf,
                            io.length, timeout)
        except OSError as exc:
            raise self._sg_io_error(exc, io) from None
        finally:
            self._give_back(caller, timeout)
        if io.__class__ is Output:
            io._let_go()  # SG_IO returned: the kernel is done with the data-out buffer
        else:
            io._cbuf = None  # and with a read's: its C pointer goes
        self._sync_finished(io, h)

    def _sync_finished(self, io: Io, h: Header) -> None:
        """Give a synchronous command's completion ``h`` to ``io``: count it, then finish it
        (handlers, verify handler, re-issue) or classify its failure."""
        cmd = io.command
        io.hdr = h
        reactor = self.reactor
        t = self.transport
        with reactor.lock:
            reactor.submitted += 1
            t.submitted += 1
            if not h.sense and (h.status == 0 or h.status == 4) and h.host_status == 0 \
                    and h.driver_status & ~0x08 == 0:
                if cmd.name in _VARIABLE or cmd.handlers or io.verify_handler is not None \
                        or cmd.verify_handler is not None:
                    reactor.outstanding += 1
                    t.outstanding += 1
                    reactor.finish(io)
                else:
                    # Reactor._finish and _done for a success with no handler
                    # to run and nobody else holding the IO yet (no done
                    # callback can have been added): the same marks and counts.
                    io.returned = True
                    io._settled = True
                    reactor.completed += 1
                    if _log_cached(_DEBUG) is not False and _log_enabled(_DEBUG):
                        log_finished(io)
            else:
                reactor.outstanding += 1
                t.outstanding += 1
                reactor.classify(io)

    def _sg_io_error(self, exc: OSError, io: Io) -> BaseException:
        """What a failed synchronous command raises: DeviceGone for a vanished device (ENODEV,
        ENXIO), KernelMemoryError for ENOMEM, for EINVAL the TaskFailed the
        asynchronous path gives a command the kernel refuses, the OSError
        itself otherwise."""
        if exc.errno in (_errno.ENODEV, _errno.ENXIO):
            return DeviceGone(f"{self.path}: the device is gone ({exc.strerror})", io=io, command=io.command,
                              host_status=1)
        if exc.errno == _errno.ENOMEM or exc.errno == _errno.EINVAL:
            return self.transport.refused(io, exc.errno)
        return exc

    def _wants_reissue(self, io: Io) -> bool:
        """Re-issue a truncated variable-length answer once, with the length the device wants.

        Not once close() began or the device went away: nothing more is sent
        then, and the answer stands as it came.
        """
        if not self.reissue or self._closed or self.transport.gone:
            return False
        from sgpy.results import wanted_length

        want = wanted_length(io.command, io.data)
        if want is None or want <= io.length:
            return False
        try:
            bigger = io.command.with_allocation_length(want)
        except (EncodeError, AttributeError, TypeError):
            return False
        io._reissued = True
        io._pack_id = 0  # the completion just read is no longer this IO's (Reactor._deliver_one)
        io.command = bigger
        io.length = bigger.transfer_bytes()
        buf = bytearray(io.length)
        io.data_buf = memoryview(buf)
        io._cbuf = _binding.buffer_pointer(buf)
        io.hdr = None
        if self.sync_only:
            self.transport.begin(-1)
            self._execute_sg_io(io)
        else:
            self.transport.queue.append(io)
            self.transport.pump()
        return True

    # -- waiting ---------------------------------------------------------------

    @_interrupt.entry
    def poll(self) -> bool:
        """Make progress without blocking; True when none of this channel's IOs is pending."""
        t = self.transport
        if t.outstanding:
            self.reactor.poll()
        return t.outstanding == 0

    @_interrupt.entry
    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until every IO of this channel returned; TimeoutError after ``timeout`` seconds."""
        t = self.transport
        if t.outstanding and not self.reactor.wait_until(lambda: t.outstanding == 0, timeout):
            raise TimeoutError(f"{self!r}: {t.outstanding} IO(s) still pending after {timeout} s")

    # -- closing ---------------------------------------------------------------

    @_interrupt.entry
    def close(self, timeout: Optional[float] = None) -> None:
        """Drain in-flight commands (up to ``timeout`` s, default: their own timeout), then close.

        Once close() returns, no command of this channel reaches any device:
        it refuses new commands at once (ChannelClosed), fails queued ones
        that were never sent, ends the channel's jobs (synchronous ones
        running in other threads too: they stop sending, collect what is in
        flight and close their own fds), waits for the commands in flight and
        for synchronous commands other threads are executing, and only then
        closes the fds.  An fd a thread is still inside an ``SG_IO`` on when
        the wait gives up is closed by that thread when the call returns,
        never under it.  Cancel is not abort: a command already sent may
        still be executed by the device after it is given up on here.
        Idempotent; in a child process that inherited the channel through
        ``fork()`` it closes only the child's copies of the fds.
        """
        if self._inherited:
            self._close_inherited()
            return
        with self._use_lock:
            if self._closed:
                return
            self._closed = True
            if self._stop is not None:
                self._stop[0] = 1  # a batch running in C sends nothing more (_many)
            self.transport.closing = True
        reactor = self.reactor
        t = self.transport
        waiting_jobs: List["Job"] = []
        try:
            with reactor.lock:
                t.fail_queued(f"{self!r} was closed")
                for job in list(t.jobs):
                    job._close(ChannelClosed(f"{self!r} was closed while the job ran"))
                    if not job.returned:
                        waiting_jobs.append(job)
                longest = max([io.timeout for st in t.endpoints for io in st.inflight.values()]
                              + [job._timeout for job in waiting_jobs] + list(self._sync_busy), default=0)
            limit = longest / 1000.0 + 5.0 if timeout is None else timeout
            deadline = time.monotonic() + limit
            if t.outstanding and not t.gone:
                reactor.wait_until(lambda: t.outstanding == 0, limit)
            for job in waiting_jobs:  # synchronous jobs end in their own threads
                _interrupt.call_interruptible(job._ended.wait, max(0.0, deadline - time.monotonic()))
            with self._use_lock:
                _interrupt.call_interruptible(self._sync_idle.wait_for, lambda: not self._sync_busy,
                                              max(0.0, deadline - time.monotonic()))
        finally:
            with reactor.lock:
                for job in list(t.jobs):
                    if not job._sync:
                        job._abort(ChannelClosed(f"{self!r} was closed while the job ran"))
                for st in t.endpoints:
                    for io in list(st.inflight.values()):
                        if not io.returned:
                            reactor.fail(io, ChannelClosed(
                                f"{self!r} was closed with {io.command!r} in flight; the device may still "
                                "execute it"))
                    st.inflight.clear()
                    if st.fd == self._fd and not self._owns_fd:
                        st.closed = True
                        reactor.unregister(st)
                    else:
                        reactor.close_endpoint(st)
                t.endpoints.clear()
                with self._use_lock:
                    # Idle callers' fds close now; a caller still out (a thread
                    # inside SG_IO past the wait) closes its own when it returns.
                    # _orphaned first: a caller given back from now on sees it
                    # and closes its own fd if it is not among those taken here.
                    self._orphaned = True
                    callers = self._sync_callers
                    while callers:
                        try:
                            caller = callers.pop()
                        except IndexError:
                            break
                        if self.kind == "sg":
                            _close_quietly(caller.fd)
                    self._sync_fds.clear()
                    if self.sync_only and self._owns_fd and not self._sync_busy and not self._fd_closed:
                        self._fd_closed = True
                        _close_quietly(self._fd)
                reactor.remove_transport(t)

    # -- fork() --------------------------------------------------------------------

    def _inherit(self) -> None:
        """This process is a child that inherited the channel through fork() (Reactor._inherit).

        The fds are shared with the parent, whose commands they carry: the
        channel refuses everything (InheritedChannel), and its locks are new
        (the parent's may have been held by a thread the child does not have).
        """
        self._inherited = True
        self._closed = True
        if self._stop is not None:
            self._stop[0] = 1
        self.transport.closing = True
        self._use_lock = threading.Lock()
        self._sync_idle = threading.Condition(self._use_lock)
        self._sync_busy = collections.deque()
        for job in self.transport.jobs:
            job._inherit()

    def _close_inherited(self) -> None:
        """close() in a child after fork(): close the child's copies of the fds, nothing else.

        No drain (the commands in flight are the parent's), no read() and no
        epoll_ctl: the epoll instance is the parent's too, and
        EPOLL_CTL_DEL there would take the parent's fds off it
        (fs/eventpoll.c works on the shared instance).  Closing the child's
        copy of an fd leaves the open file, and so the parent's registration
        and commands, alone: epoll forgets a file only when its last
        descriptor closes (epoll(7), Q6).
        """
        pool = list(self.transport.endpoints)
        self.transport.endpoints.clear()
        for st in pool:
            st.closed = True
            if st.fd != self._fd or self._owns_fd:
                _close_quietly(st.fd)
        callers, self._sync_callers = self._sync_callers, collections.deque()
        if self.kind == "sg":
            for fd in self._sync_fds:
                _close_quietly(fd)
        elif self._owns_fd and not self._orphaned and not self._fd_closed:
            self._fd_closed = True
            _close_quietly(self._fd)
        self._sync_fds = []
        self._orphaned = True
        del callers
        jobs = list(self.transport.jobs)
        self.transport.jobs.clear()
        for job in jobs:
            job._close_inherited()
        self.reactor.remove_transport(self.transport)


# SG_IO blocks in SyncCaller.call: Ctrl-C there is run at once (sgpy._interrupt).
_interrupt.interruptible(_binding.SyncCaller.call)
