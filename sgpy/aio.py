"""asyncio bridge: await SCSI commands from coroutines.

::

    async with sgpy.aio.open("/dev/sg0") as ch:
        io = await ch.cmd.Inquiry()
        print(io.result.vendor)
        ios = await asyncio.gather(*(ch.cmd.Read10(lba=i, transfer_length=1) for i in range(1000)))

How it works: the reactor's epoll fd sits on the running loop
(``loop.add_reader``), so completions are processed by the loop itself when
the kernel has them, with no thread.  Each awaited command becomes an
:class:`asyncio.Future` completed from the IO's done callback; a timer
drives the reactor's watchdog once a second while commands are pending.
When the reactor runs in its own thread (``reactor.start()``), completions
reach the loop through ``call_soon_threadsafe`` instead.

Cancellation is not abort.  Cancelling a task that awaits a command stops
the wait, not the command: the command was already handed to the kernel,
the device may still execute it, and the reactor still collects its
completion and runs its handlers exactly once.  Nothing is lost and nothing
completes twice; the cancelled task just never sees the result.

Everything is closed by the context managers: leaving ``async with``
waits (asynchronously) for the channel's commands in flight, then closes
its file descriptors and takes the epoll fd off the loop once no channel
of that reactor needs it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import (TYPE_CHECKING, Any, Callable, Coroutine, Dict, Generator, Iterable, List, Optional, Set, Tuple,
                    TypeVar, cast)

from sgpy.channel import Channel, CommandNamespace
from sgpy.errors import ChannelClosed, IllegalRequest, TaskFailed
from sgpy.io import Io, raise_first_failure
from sgpy.reactor import Reactor
from sgpy.safety import check_channel

if TYPE_CHECKING:  # pragma: no cover
    from sgpy._command_types import AsyncCommands
    from sgpy.cdb.base import Command
    from sgpy.job import Job

#: The answer type of the command being executed (``Io[_R].result``).
_R = TypeVar("_R")

__all__ = ["open", "AsyncChannel", "wait", "WATCHDOG_TICK"]

#: Seconds between the reactor watchdog's runs while commands are pending.
WATCHDOG_TICK = 1.0


class _Binding:
    """One reactor attached to one event loop; shared by every channel using both."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reactor: Reactor) -> None:
        self.loop = loop
        self.reactor = reactor
        self.thread_id = threading.get_ident()
        self.users = 0
        self.pending = 0
        self.reading = False
        self.ticker: Optional[asyncio.TimerHandle] = None

    # -- attachment --------------------------------------------------------

    def acquire(self) -> None:
        if self.users == 0 and not self.reactor.running:
            self.loop.add_reader(self.reactor.fileno(), self._on_readable)
            self.reading = True
        self.users += 1

    def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self._stop_reading()
        if self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None
        _BINDINGS.pop((self.loop, self.reactor), None)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            try:
                self.loop.remove_reader(self.reactor.fileno())
            except (ValueError, OSError, RuntimeError):  # the reactor or the loop is closed already
                pass

    def _on_readable(self) -> None:
        if self.reactor.running:
            # Someone moved the reactor into its own thread: its poll() no longer
            # consumes events, so a level-triggered reader would spin.
            self._stop_reading()
            return
        self.reactor.poll()

    def _tick(self) -> None:
        self.ticker = None
        if not self.reactor.running:
            self.reactor.poll()  # runs the watchdog; also catches anything missed
        if self.pending:
            self.ticker = self.loop.call_later(WATCHDOG_TICK, self._tick)

    # -- futures -----------------------------------------------------------

    def future(self, io: Io) -> "asyncio.Future[Io]":
        """A future completed (in the loop thread) once ``io`` has returned."""
        loop = self.loop
        fut: "asyncio.Future[Io]" = loop.create_future()
        self.pending += 1
        if self.ticker is None:
            self.ticker = loop.call_later(WATCHDOG_TICK, self._tick)

        def settle(done: Io) -> None:
            self.pending -= 1
            if fut.done():  # the waiter was cancelled: the completion is not needed
                return
            exc = done.exception
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(done)

        thread_id = self.thread_id

        def on_done(done: Io) -> None:
            # Runs where the reactor is driven, with its lock held.
            if threading.get_ident() == thread_id:
                settle(done)
            else:
                loop.call_soon_threadsafe(settle, done)

        io.add_done_callback(on_done)
        return fut


_BINDINGS: Dict[Tuple[asyncio.AbstractEventLoop, Reactor], _Binding] = {}


def _binding(reactor: Reactor) -> _Binding:
    loop = asyncio.get_running_loop()
    key = (loop, reactor)
    b = _BINDINGS.get(key)
    if b is None:
        b = _BINDINGS[key] = _Binding(loop, reactor)
    return b


async def wait(io: Io) -> Io:
    """Await any pending engine IO (from ``channel.execute(cmd, async_=True)``).

    Returns the IO, or raises its exception, as ``io.wait()`` would.
    """
    if io.returned:
        if io.exception is not None:
            raise io.exception
        return io
    b = _binding(io.channel.reactor)
    b.acquire()
    try:
        return await b.future(io)
    finally:
        b.release()


class _AsyncCommands(CommandNamespace):
    """``ch.cmd``: every command class, awaitable on the channel when called."""

    __slots__ = ()

    def _bind(self, cls: Any) -> Callable[..., Coroutine[Any, Any, Io]]:
        channel = self._channel

        def call(*args: Any, timeout: Optional[int] = None, verify_handler: Any = None,
                 **fields: Any) -> Coroutine[Any, Any, Io]:
            return channel.execute(cls(*args, **fields), timeout=timeout, verify_handler=verify_handler)

        call.__doc__ = f"Await {cls.__name__} on this channel (see sgpy.command.{cls.__name__})."
        return call


class AsyncChannel:
    """A :class:`~sgpy.channel.Channel` whose commands are awaited.

    Made by :func:`open` inside a running event loop; ``channel`` is the
    engine channel underneath (its options, statistics and ``reactor``).
    Commands go through the same queue, fd pool and safety policy as the
    synchronous API.  Block devices and bsg nodes, which take synchronous
    ``SG_IO`` only, are driven from the loop's default executor.
    """

    def __init__(self, channel: Channel, *, block_size_known: bool = False) -> None:
        self.channel = channel
        #: Every command, awaited on this channel when called: ``await ch.cmd.Inquiry()``.
        self.cmd: AsyncCommands = cast("AsyncCommands", _AsyncCommands(self))
        self._binding = _binding(channel.reactor)
        self._binding.acquire()
        self._pending: Set[Io] = set()
        self._closed = False
        self._block_size_known = block_size_known
        self._block_size_task: Optional["asyncio.Future[int]"] = None

    def __repr__(self) -> str:
        return f"AsyncChannel({self.channel.path!r})"

    @property
    def path(self) -> str:
        """The device path."""
        return self.channel.path

    @property
    def reactor(self) -> Reactor:
        """The reactor this channel's completions go through."""
        return self.channel.reactor

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` began."""
        return self._closed

    # -- executing -----------------------------------------------------------

    async def execute(self, cmd: Command[_R], *, timeout: Optional[int] = None,
                      verify_handler: Any = None) -> Io[_R]:
        """Send ``cmd`` and await it: returns the IO, or raises its failure (as ``Channel.execute``)."""
        channel = self.channel
        if self._closed:
            raise ChannelClosed(f"{self!r} is closed")
        if channel.sync_only:
            loop = self._binding.loop
            run = functools.partial(channel.execute, cmd, timeout=timeout, verify_handler=verify_handler)
            return await loop.run_in_executor(None, run)
        # getattr: anything but a command goes on to Channel.execute, which names the mistake.
        if getattr(cmd, "needs_block_size", False) and not self._block_size_known:
            if channel.read_only or channel.policy is not None:
                check_channel(channel, cmd)  # refuse before READ CAPACITY reaches the device
            await self.block_size()
        io = channel.execute(cmd, async_=True, timeout=timeout, verify_handler=verify_handler)
        return await self._await(io)

    async def execute_many(self, cmds: Iterable[Command[Any]], *, timeout: Optional[int] = None) -> List[Io[Any]]:
        """Send commands in one batch and await them all; then raise the first failure, if any.

        As with ``Channel.execute_many``, every IO has returned when the
        failure is raised, and the exception's ``batch`` holds them all.
        """
        cmds = list(cmds)
        if self._closed:
            raise ChannelClosed(f"{self!r} is closed")
        if self.channel.sync_only:
            loop = self._binding.loop
            run = functools.partial(self.channel.execute_many, cmds, timeout=timeout)
            return await loop.run_in_executor(None, run)
        if not self._block_size_known and any(getattr(c, "needs_block_size", False) for c in cmds):
            if self.channel.read_only or self.channel.policy is not None:
                for c in cmds:
                    check_channel(self.channel, c)
            await self.block_size()
        ios = self.channel.execute_many(cmds, async_=True, timeout=timeout)
        await asyncio.gather(*(self._await(io) for io in ios), return_exceptions=True)
        raise_first_failure(ios)
        return ios

    async def run(self, cmd: Any, **options: Any) -> "Job":
        """Run a job (:meth:`sgpy.channel.Channel.run`, same options) without blocking the loop.

        Returns the finished :class:`sgpy.job.Job`, or raises its first
        failure (``stop_on_error``, the default).  The job's C loop is driven
        by the reactor, which this loop watches; READ CAPACITY, when the job
        needs the block size or the medium's size, is awaited first.
        """
        if self._closed:
            raise ChannelClosed(f"{self!r} is closed")
        channel = self.channel
        options.pop("async_", None)
        options.pop("async", None)
        if channel.read_only or channel.policy is not None:
            check_channel(channel, cmd)  # refuse before READ CAPACITY reaches the device
        wants_size = isinstance(options.get("lba"), str) and options.get("lba_range") is None
        if (cmd.needs_block_size or wants_size) and (not self._block_size_known or channel._num_blocks is None):
            if wants_size and self._block_size_known:
                self._block_size_known = False  # learn the number of blocks with it
                self._block_size_task = None
            await self.block_size()
        job = channel.run(cmd, async_=True, **options)
        if job.returned:
            if job.exception is not None:
                raise job.exception
            return job
        return await self._binding.future(job)  # type: ignore[arg-type,return-value]

    def submit(self, cmd: Command[_R], *, timeout: Optional[int] = None, verify_handler: Any = None) -> Io[_R]:
        """Send ``cmd`` without waiting; returns the pending IO for :meth:`wait`.

        Commands whose transfer depends on the block size need it known
        first (``await ch.block_size()``, or ``block_size=`` at open).
        """
        if self._closed:
            raise ChannelClosed(f"{self!r} is closed")
        io = self.channel.execute(cmd, async_=True, timeout=timeout, verify_handler=verify_handler)
        self._track(io)
        return io

    async def wait(self, io: Io[_R]) -> Io[_R]:
        """Await an IO of this channel: returns it, or raises its failure."""
        return await self._await(io)

    def _track(self, io: Io) -> None:
        if not io.returned:
            pending = self._pending
            pending.add(io)
            io.add_done_callback(pending.discard)

    async def _await(self, io: Io) -> Io:
        if io.returned:
            if io.exception is not None:
                raise io.exception
            return io
        self._track(io)
        return await self._binding.future(io)

    async def block_size(self) -> int:
        """The logical block size, learned once with READ CAPACITY without blocking the loop."""
        if self._block_size_known:
            return self.channel.block_size
        task = self._block_size_task
        if task is None:
            task = self._block_size_task = asyncio.ensure_future(self._learn_block_size())
        try:
            size = await asyncio.shield(task)
        except BaseException:
            if task.done():
                self._block_size_task = None  # let a later call try again
            raise
        return size

    async def _learn_block_size(self) -> int:
        from sgpy import command as _command
        from sgpy.handler import might_fail

        # READ CAPACITY(16), SBC-4 5.21 (table 71: LOGICAL BLOCK LENGTH in bytes 8-11);
        # devices without it answer ILLEGAL REQUEST and get READ CAPACITY(10).
        io = await self._await(self.channel.execute(_command.ReadCapacity16(allocation_length=32), async_=True,
                                                    verify_handler=might_fail))
        if io.error is None and len(io.data) >= 12:
            size = int.from_bytes(io.data[8:12], "big")
            self.channel._num_blocks = int.from_bytes(io.data[0:8], "big") + 1  # RETURNED LBA + 1
        elif io.error is not None and not isinstance(io.error, IllegalRequest):
            raise io.error
        else:
            io = await self._await(self.channel.execute(_command.ReadCapacity10(), async_=True))
            if len(io.data) < 8:
                raise TaskFailed(f"{self.path}: READ CAPACITY(10) returned {len(io.data)} bytes", io=io)
            size = int.from_bytes(io.data[4:8], "big")  # SBC-4 table 69
            self.channel._num_blocks = int.from_bytes(io.data[0:4], "big") + 1
        self.channel.block_size = size
        self._block_size_known = True
        return size

    # -- closing -------------------------------------------------------------

    async def aclose(self, timeout: Optional[float] = None) -> None:
        """Await the commands in flight (up to ``timeout`` seconds), then close the channel.

        Commands still in flight after ``timeout`` fail with ChannelClosed
        (the device may still execute them: cancel is not abort).
        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            pending = [io for io in self._pending if not io.returned]
            if pending and not self.channel.sync_only:
                futures = [self._binding.future(io) for io in pending]
                done, not_done = await asyncio.wait(futures, timeout=timeout)
                for f in done:
                    f.exception()  # retrieved: the failures belong to their own waiters
                for f in not_done:
                    f.cancel()
            self.channel.close(timeout=0 if any(not io.returned for io in self._pending) else None)
        finally:
            self._binding.release()

    async def __aenter__(self) -> "AsyncChannel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Opening:
    """What :func:`open` returns: ``await`` it, or use it with ``async with``."""

    __slots__ = ("_path", "_options", "_channel")

    def __init__(self, path: str, options: Dict[str, Any]) -> None:
        self._path = path
        self._options = options
        self._channel: Optional[AsyncChannel] = None

    async def _open(self) -> AsyncChannel:
        asyncio.get_running_loop()  # RuntimeError outside a coroutine, before any fd is opened
        channel = Channel.from_url(self._path, **self._options)
        try:
            return AsyncChannel(channel, block_size_known=self._options.get("block_size") is not None)
        except BaseException:
            channel.close()
            raise

    def __await__(self) -> Generator[Any, None, AsyncChannel]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncChannel:
        self._channel = await self._open()
        return self._channel

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.aclose()


def open(path: str, **options: Any) -> _Opening:  # noqa: A001 - the name users expect
    """Open ``path`` for asyncio: ``async with sgpy.aio.open(path) as ch`` or ``ch = await sgpy.aio.open(path)``.

    ``path`` may also be an ``iscsi://`` URL (:meth:`sgpy.channel.Channel.from_url`).
    ``options`` are those of :meth:`sgpy.channel.Channel.from_path`
    (``reactor``, ``block_size``, ``max_fds``, ``timeout``, ``read_only``,
    ``policy``...).  Must be used inside a running event loop.
    """
    return _Opening(path, options)
