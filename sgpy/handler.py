"""Verify handlers and data validators.

A *verify handler* judges a finished IO: it returns normally to accept the
outcome, or raises to reject it; what it raises is what ``io.wait()`` (and a
synchronous ``execute``) raises.  It runs first, before the command's
handler chain.  Every command uses :func:`success` unless told otherwise::

    command.Read16(lba=0xFFFFFFFF, transfer_length=1, verify_handler=handler.must_fail)
    channel.execute(cmd, verify_handler=handler.must_fail(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x21))

*Handlers* (``cmd.add_handler(fn)``) run after a successful verification, in
order, with the IO; an exception inside one stops the chain and reaches
whoever waits on the IO.  The validators below (:func:`expect_data`,
:func:`expect_length`, :func:`expect`) are ready-made handlers.

No ``assert`` statements: the checks hold under ``python -O`` too.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from sgpy.constants import HostStatus, ScsiStatus, SenseKey
from sgpy.errors import VerifyFailed

__all__ = [
    "success",
    "must_fail",
    "might_fail",
    "expect_data",
    "expect_length",
    "expect",
    "Handler",
]

Handler = Callable[[Any], Any]


def success(io: Any) -> None:
    """The default verify handler: any failure raises (RECOVERED ERROR counts as success)."""
    if io.error is not None:
        raise io.error


def might_fail(io: Any) -> None:
    """Accept success and failure alike; the failure stays readable in ``io.error``."""
    return None


def _describe(io: Any) -> str:
    err = io.error
    if err is None:
        return "it succeeded"
    return f"it failed with {type(err).__name__}: {err}"


class _MustFail:
    """``must_fail``: the command is expected to fail (optionally: in a given way).

    Used bare (``verify_handler=handler.must_fail``) any failure is accepted
    and success raises :class:`VerifyFailed`.  Called with keywords it
    returns a handler that also checks the failure::

        handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR)
        handler.must_fail(asc=0x24, ascq=0x00)
        handler.must_fail(status=ScsiStatus.RESERVATION_CONFLICT)
        handler.must_fail(host_status=HostStatus.DID_TIME_OUT)
        handler.must_fail(exception=sgpy.errors.DeviceGone)
    """

    __slots__ = ("sense_key", "asc", "ascq", "status", "host_status", "exception")

    def __init__(
        self,
        sense_key: Optional[Union[SenseKey, int]] = None,
        asc: Optional[int] = None,
        ascq: Optional[int] = None,
        status: Optional[Union[ScsiStatus, int]] = None,
        host_status: Optional[Union[HostStatus, int]] = None,
        exception: Optional[type] = None,
    ) -> None:
        self.sense_key = sense_key
        self.asc = asc
        self.ascq = ascq
        self.status = status
        self.host_status = host_status
        self.exception = exception

    def __call__(self, io: Any = None, **expected: Any) -> Any:
        if io is None or expected:
            # handler.must_fail(sense_key=...) -> a configured handler
            return _MustFail(**expected)
        self._check(io)
        return None

    def _expectation(self) -> str:
        parts = []
        for name in ("sense_key", "asc", "ascq", "status", "host_status"):
            value = getattr(self, name)
            if value is not None:
                shown = value.name if hasattr(value, "name") else f"0x{value:02x}"
                parts.append(f"{name}={shown}")
        if self.exception is not None:
            parts.append(f"exception={self.exception.__name__}")
        return ", ".join(parts) or "any failure"

    def _check(self, io: Any) -> None:
        err = io.error
        if err is None:
            raise VerifyFailed(
                f"expected to fail ({self._expectation()}), but it succeeded",
                io=io,
                command=io.command,
            )
        mismatch = []
        sense = getattr(err, "sense", None)
        if self.sense_key is not None:
            got = None if sense is None else sense.sense_key
            if got is None or int(got) != int(self.sense_key):
                mismatch.append(f"sense key {getattr(got, 'name', got)}")
        if self.asc is not None:
            got = None if sense is None else sense.asc
            if got != self.asc:
                mismatch.append("ASC " + ("none" if got is None else f"{got:02x}h"))
        if self.ascq is not None:
            got = None if sense is None else sense.ascq
            if got != self.ascq:
                mismatch.append("ASCQ " + ("none" if got is None else f"{got:02x}h"))
        if self.status is not None and getattr(err, "status", None) != int(self.status):
            mismatch.append(f"status 0x{getattr(err, 'status', 0):02x}")
        if self.host_status is not None and getattr(err, "host_status", None) != int(self.host_status):
            mismatch.append(f"host status 0x{getattr(err, 'host_status', 0):02x}")
        if self.exception is not None and not isinstance(err, self.exception):
            mismatch.append(type(err).__name__)
        if mismatch:
            raise VerifyFailed(
                f"expected to fail with {self._expectation()}, "
                f"but got {', '.join(mismatch)}: {getattr(err, 'message', err)}",
                io=io,
                command=io.command,
            ) from err

    def __repr__(self) -> str:
        return f"must_fail({self._expectation()})"


#: The command must fail; ``must_fail(sense_key=..., asc=...)`` narrows how.
must_fail = _MustFail()


def expect_data(expected: bytes) -> Handler:
    """A handler that checks the data read equals ``expected``."""
    want = bytes(expected)

    def check(io: Any) -> None:
        got = io.data
        if got != want:
            where = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            raise VerifyFailed(
                f"data differs from what was expected at byte {where} "
                f"({len(got)} bytes read, {len(want)} expected)",
                io=io,
                command=io.command,
            )

    return check


def expect_length(n: int) -> Handler:
    """A handler that checks exactly ``n`` bytes moved (``dxfer_len - resid``)."""

    def check(io: Any) -> None:
        got = len(io.data)
        if got != n:
            raise VerifyFailed(f"{got} bytes moved, {n} expected", io=io, command=io.command)

    return check


def expect(predicate: Callable[[Any], bool], message: str = "the data check failed") -> Handler:
    """A handler that raises :class:`VerifyFailed` with ``message`` unless ``predicate(io)``."""

    def check(io: Any) -> None:
        if not predicate(io):
            raise VerifyFailed(message, io=io, command=io.command)

    return check

