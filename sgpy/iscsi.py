"""iSCSI targets as channels: libiscsi's asynchronous API on the sgpy reactor.

``Channel.from_url("iscsi://[user%password@]host[:port]/target-iqn/lun")``
(or :meth:`IscsiChannel.from_url`) logs in to the target and returns an
:class:`IscsiChannel`: the same ``execute`` / ``execute_many`` /
``async_=True`` / ``poll`` / ``wait`` / ``channel.cmd.X(...)`` / handlers /
verify handlers / timeouts as a channel on ``/dev/sgN``, and the same IO
fields and exception classes for the outcome.

How it runs: each channel owns one libiscsi context (one TCP connection,
one session, one LUN).  Its socket is registered with the channel's
:class:`~sgpy.reactor.Reactor` beside any sg file descriptors, with the
``poll()`` events libiscsi asks for (``iscsi_which_events``); when epoll
reports them the reactor calls back here and ``iscsi_service`` reads the
answers.  libiscsi's callbacks (in C, ``sgpy/_iscsi.c``) only write packed
records, which are turned into :class:`~sgpy.io.Header` values and finished
through the reactor exactly like sg completions.  No thread is started.

A small timerfd per channel, armed only while commands are in flight,
enforces each command's timeout (an ABORT TASK is sent to the target and the
IO fails with :class:`~sgpy.errors.CommandTimeout`) and drives reconnection.

Connection loss fails every pending IO of the channel exactly once with
:class:`~sgpy.errors.DeviceGone`, unless the channel was opened with
``reconnect=SECONDS``: then the commands in flight are sent again, in their
order, on a new session (see :class:`IscsiChannel`).

Login options: ``initiator_name``, CHAP (``user``/``password``, and mutual
CHAP with ``target_user``/``target_password``), ``header_digest``,
``data_digest``.

Discovery, as ``iscsiadm -m discovery -t st`` and libiscsi's ``iscsi-ls``
do it: :func:`send_targets` lists the targets a portal offers (a discovery
session, ``SendTargets=All``), :func:`discover` adds each target's LUNs
(REPORT LUNS, then INQUIRY of each) with their URLs; :mod:`sgpy.discovery`
names the same functions and values.
"""

from __future__ import annotations

import collections
import errno as _errno
import os
import re
import socket
import threading
import time
from typing import Deque, TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union, cast

import attr

from sgpy import _check, _interrupt
from sgpy import _iscsi_binding as _b
from sgpy.channel import UNIT_ATTENTIONS_KEPT, Channel, CommandNamespace
from sgpy.constants import DEFAULT_TIMEOUT_MS, Direction, HostStatus, PeripheralDeviceType, ScsiStatus, SenseKey
from sgpy.errors import (
    CdbLengthError,
    CheckCondition,
    CommandTimeout,
    DeviceGone,
    EncodeError,
    HostError,
    SgError,
    TaskFailed,
)
from sgpy.io import Header, Io, Output
from sgpy.reactor import Reactor, default_reactor
from sgpy.transport import Transport

if TYPE_CHECKING:  # pragma: no cover
    from sgpy._command_types import Commands

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_QUEUE_DEPTH",
    "DEFAULT_MAX_TRANSFER",
    "IscsiUrl",
    "LoginOptions",
    "IscsiChannel",
    "Portal",
    "Target",
    "Lun",
    "DiscoveredTarget",
    "DiscoveredLun",
    "discover",
    "send_targets",
    "parse_portal",
    "parse_url",
    "default_initiator_name",
    "available",
    "IscsiError",
    "IscsiUrlError",
    "IscsiConnectError",
    "IscsiConnectionRefused",
    "NotAnIscsiPortal",
    "LoginFailed",
    "UnknownTarget",
    "AuthenticationFailed",
    "AuthorizationFailed",
    "NoSuchLun",
    "CdbTooLong",
]

#: The well-known iSCSI TCP port (IANA service name "iscsi-target").
DEFAULT_PORT = 3260
#: Commands one channel keeps in flight on its session; more wait in the
#: channel's queue (the target's CmdSN window may hold them back further).
DEFAULT_QUEUE_DEPTH = 64
#: Largest transfer of one command unless ``max_transfer=`` says otherwise.
DEFAULT_MAX_TRANSFER = 32 * 1024 * 1024
#: How long a login may take, in seconds, unless ``login_timeout=`` says otherwise.
DEFAULT_LOGIN_TIMEOUT = 30.0

_TICK_MS = 100  # the timeout timer's period while commands are in flight
_RETRY_EVERY = 1.0  # seconds between reconnection attempts
_UA_TRIES = 10  # TEST UNIT READYs to clear unit attentions after a re-login

_DIR = {Direction.NONE: 0, Direction.FROM_DEVICE: 1, Direction.TO_DEVICE: 2}
_DID_NO_CONNECT = int(HostStatus.DID_NO_CONNECT)
_DID_TIME_OUT = int(HostStatus.DID_TIME_OUT)
_DID_ERROR = int(HostStatus.DID_ERROR)
_CHECK_CONDITION = int(ScsiStatus.CHECK_CONDITION)
_CONDITION_MET = int(ScsiStatus.CONDITION_MET)
_DRIVER_SENSE = 0x08  # what sg reports in driver_status when sense came back

# RFC 7143 11.13.5: Login Response Status-Class / Status-Detail, as libiscsi
# reports them ("Status: <text>(<class << 8 | detail>)").
_LOGIN_AUTHENTICATION = 0x0201
_LOGIN_AUTHORIZATION = 0x0202
_LOGIN_NOT_FOUND = 0x0203
_LOGIN_REMOVED = 0x0204


def available() -> bool:
    """True when sgpy was built with its libiscsi extension."""
    return _b.available()


# -- errors -------------------------------------------------------------------


class IscsiError(SgError):
    """Root of the iSCSI-specific failures (connecting, logging in, addressing)."""


class IscsiUrlError(IscsiError, ValueError):
    """An ``iscsi://`` URL that cannot be parsed; the message shows the expected form."""


class CdbTooLong(CdbLengthError, IscsiError):
    """A CDB longer than libiscsi carries (16 bytes: no additional header segment).

    Raised by ``execute`` (and jobs) before anything is sent, like any
    :class:`~sgpy.errors.CdbLengthError`.
    """


class IscsiConnectError(IscsiError, ConnectionError):
    """The TCP connection to the portal failed (``errno`` says why when known)."""

    def __init__(self, err: int, message: str) -> None:
        ConnectionError.__init__(self, err, message)

    def __str__(self) -> str:
        return str(self.strerror)


class IscsiConnectionRefused(IscsiConnectError, ConnectionRefusedError):
    """Nothing listens on the portal: no target there, or the wrong port."""


class NotAnIscsiPortal(IscsiConnectError):
    """Something accepts TCP connections at the portal but does not speak iSCSI.

    It closed the connection, or sent bytes that are no iSCSI PDU, in answer
    to the Login Request, without the Login Response every iSCSI target
    sends (even one that refuses the login).  ``errno`` is ``EPROTO``.
    Raised at once, not after ``login_timeout``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_errno.EPROTO, message)


class LoginFailed(IscsiError):
    """The target refused the login; ``status`` is the RFC 7143 Status-Class/Detail (or None)."""

    def __init__(self, message: str, *, status: Optional[int] = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class UnknownTarget(LoginFailed, LookupError):
    """No target of that IQN at the portal (login status 0203h); ``targets`` lists those there."""

    def __init__(self, message: str, *, status: Optional[int] = None, reason: str = "",
                 targets: Sequence[str] = ()) -> None:
        super().__init__(message, status=status, reason=reason)
        self.targets = tuple(targets)


class AuthenticationFailed(LoginFailed):
    """CHAP failed: a wrong user or secret (either direction), or CHAP missing where required."""


class AuthorizationFailed(LoginFailed):
    """The target does not accept this initiator (name or address) for that target (0202h)."""


class NoSuchLun(IscsiError, LookupError):
    """The target has no such LUN; ``luns`` lists the LUNs it reports."""

    def __init__(self, message: str, *, luns: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.luns = tuple(luns)


# -- URLs -----------------------------------------------------------------------

_URL_SYNTAX = "iscsi://[user[%password]@]host[:port]/target-iqn/lun"
_URL_RE = re.compile(
    r"""^iscsi://
        (?:(?P<user>[^@/%]*)(?:%(?P<password>[^@/]*))?@)?
        (?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[\]@?]+)
        (?::(?P<port>[0-9]+))?
        (?:/(?P<target>[^/?]*)(?:/(?P<lun>[^/?]*))?)?
        /?
        (?:\?(?P<query>.*))?$""",
    re.IGNORECASE | re.VERBOSE,
)
_QUERY_KEYS = ("target_user", "target_password", "header_digest")
_HEADER_DIGESTS = {
    "none": "none",
    "crc32c": "crc32c",
    "none,crc32c": "none,crc32c",
    "crc32c,none": "crc32c,none",
    "none-crc32c": "none,crc32c",
    "crc32c-none": "crc32c,none",
}


def _digest(value: Union[str, bool, None], what: str) -> str:
    if value is None or value is False:
        return "none"
    if value is True:
        return "crc32c"
    key = str(value).strip().lower().replace(" ", "")
    try:
        return _HEADER_DIGESTS[key]
    except KeyError:
        raise ValueError(f"{what}={value!r}: use 'none', 'crc32c', 'none,crc32c' or 'crc32c,none'") from None


@attr.s(frozen=True, slots=True, auto_attribs=True)
class IscsiUrl:
    """A parsed ``iscsi://[user[%password]@]host[:port]/target-iqn/lun`` URL.

    The form is libiscsi's (``ISCSI_URL_SYNTAX`` in ``<iscsi/iscsi.h>``); a
    query may add ``target_user``, ``target_password`` (mutual CHAP) and
    ``header_digest``.  ``target`` and ``lun`` are None in a portal URL
    (``iscsi://host[:port]``, as :func:`discover` takes).
    """

    host: str
    port: int = DEFAULT_PORT
    target: Optional[str] = None
    lun: Optional[int] = None
    user: Optional[str] = attr.ib(default=None, repr=False)
    password: Optional[str] = attr.ib(default=None, repr=False)
    target_user: Optional[str] = attr.ib(default=None, repr=False)
    target_password: Optional[str] = attr.ib(default=None, repr=False)
    header_digest: Optional[str] = None
    text: str = attr.ib(default="", repr=False, eq=False)

    @classmethod
    def from_string(cls, url: str, *, need_lun: bool = True) -> "IscsiUrl":
        """Parse ``url``; :class:`IscsiUrlError` says what is wrong and shows the form."""
        if not isinstance(url, str):
            raise IscsiUrlError(f"an iSCSI URL is a str, not {type(url).__name__}")
        m = _URL_RE.match(url.strip())
        if m is None:
            raise IscsiUrlError(f"not an iSCSI URL: {url!r}; expected {_URL_SYNTAX}")
        host = m.group("host")
        if host.startswith("["):
            host = host[1:-1]
        port = DEFAULT_PORT
        if m.group("port"):
            port = int(m.group("port"))
            if not 0 < port < 65536:
                raise IscsiUrlError(f"{url!r}: port {port} is out of range (1..65535)")
        target = m.group("target") or None
        lun_text = m.group("lun")
        lun: Optional[int] = None
        if lun_text:
            if not (lun_text.isascii() and lun_text.isdigit()):
                raise IscsiUrlError(f"{url!r}: the LUN must be a decimal number, not {lun_text!r}; "
                                    f"expected {_URL_SYNTAX}")
            lun = int(lun_text, 10)
            # libiscsi encodes LUNs below 256 with the peripheral device and
            # the others with the flat space addressing method, whose LUN
            # field has 14 bits (SAM-5, "flat space addressing method").
            if not 0 <= lun < 16384:
                raise IscsiUrlError(f"{url!r}: LUN {lun} is out of range (0..16383, flat space addressing)")
        if need_lun and (target is None or lun is None):
            missing = "the target IQN and the LUN" if target is None else "the LUN"
            raise IscsiUrlError(f"{url!r} lacks {missing}; expected {_URL_SYNTAX}")
        fields: Dict[str, Optional[str]] = {k: None for k in _QUERY_KEYS}
        query = m.group("query")
        if query:
            for part in query.split("&"):
                if not part:
                    continue
                key, sep, value = part.partition("=")
                key = key.strip().lower()
                if key not in fields or not sep:
                    raise IscsiUrlError(f"{url!r}: unknown URL argument {part!r}; "
                                        f"known: {', '.join(_QUERY_KEYS)} (name=value)")
                fields[key] = value
        digest = fields["header_digest"]
        if digest is not None:
            try:
                digest = _digest(digest, "header_digest")
            except ValueError as exc:
                raise IscsiUrlError(f"{url!r}: {exc}") from None
        user = m.group("user")
        password = m.group("password")
        return cls(host=host, port=port, target=target, lun=lun,
                   user=user if user else None, password=password if user else None,
                   target_user=fields["target_user"] or None, target_password=fields["target_password"],
                   header_digest=digest, text=url.strip())

    @property
    def portal(self) -> str:
        """``host:port`` (``[v6addr]:port`` for IPv6), as libiscsi connects to it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def redacted(self) -> str:
        """The URL as given, with any password replaced by ``***`` (for reprs and logs)."""
        text = self.text or str(self)
        text = re.sub(r"^(iscsi://[^@/%]*)%[^@/]*@", r"\1%***@", text, flags=re.IGNORECASE)
        return re.sub(r"(?i)([?&]target_password=)[^&]*", r"\1***", text)

    def with_lun(self, lun: int) -> "IscsiUrl":
        """The same target, another LUN."""
        new = attr.evolve(self, lun=lun, text="")
        return attr.evolve(new, text=str(new))

    def __str__(self) -> str:
        cred = ""
        if self.user:
            cred = self.user + (f"%{self.password}" if self.password is not None else "") + "@"
        out = f"iscsi://{cred}{self.portal}"
        if self.target is not None:
            out += f"/{self.target}"
            if self.lun is not None:
                out += f"/{self.lun}"
        args = []
        if self.target_user:
            args.append(f"target_user={self.target_user}")
            if self.target_password is not None:
                args.append(f"target_password={self.target_password}")
        if self.header_digest:
            args.append(f"header_digest={self.header_digest}")
        return out + ("?" + "&".join(args) if args else "")


def parse_url(url: str) -> IscsiUrl:
    """Parse an ``iscsi://...`` URL naming a LUN (see :class:`IscsiUrl`)."""
    return IscsiUrl.from_string(url)


def default_initiator_name() -> str:
    """``iqn.2024-01.org.sgpy:<hostname>``: the initiator name used unless one is given."""
    host = re.sub(r"[^a-z0-9.-]", "-", socket.gethostname().lower()) or "localhost"
    return f"iqn.2024-01.org.sgpy:{host}"


# -- login options -----------------------------------------------------------------


@attr.s(frozen=True, slots=True, auto_attribs=True)
class LoginOptions:
    """What the initiator says at login (RFC 7143 login and security keys): names, CHAP, digests, time limits.

    ``user``/``password``: one-way CHAP (the target checks the initiator);
    adding ``target_user``/``target_password`` makes it mutual (the
    initiator checks the target too).  ``header_digest``: ``"none"``,
    ``"crc32c"`` or a preference list ``"crc32c,none"``/``"none,crc32c"``.
    ``data_digest``: ``"none"`` only, because libiscsi always offers
    ``DataDigest=None``; asking for CRC32C raises ValueError.
    """

    initiator_name: str = attr.ib(factory=default_initiator_name)
    user: Optional[str] = None
    password: Optional[str] = attr.ib(default=None, repr=False)
    target_user: Optional[str] = None
    target_password: Optional[str] = attr.ib(default=None, repr=False)
    header_digest: str = "none"
    data_digest: str = "none"
    alias: Optional[str] = None
    login_timeout: float = DEFAULT_LOGIN_TIMEOUT

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "header_digest", _digest(self.header_digest, "header_digest"))
        if _digest(self.data_digest, "data_digest") != "none":
            raise ValueError(
                f"data_digest={self.data_digest!r}: libiscsi offers DataDigest=None only, so data digests "
                "cannot be negotiated; use header_digest='crc32c' to protect the PDU headers")
        object.__setattr__(self, "data_digest", "none")
        if self.target_user is not None and self.user is None:
            raise ValueError("mutual CHAP (target_user=) needs one-way CHAP too: pass user= and password=")
        for name in ("initiator_name", "user", "password", "target_user", "target_password", "alias"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, not {type(value).__name__}")
            if "\0" in value:
                # libiscsi takes C strings: a NUL would silently cut the value there.
                shown = "" if "password" in name else f" ({value!r})"
                raise ValueError(f"{name} contains a NUL character{shown}; login keys are sent as NUL-separated "
                                 "text (RFC 7143 6.1), so a value cannot hold one: remove it")
        if not self.initiator_name:
            raise ValueError("initiator_name may not be empty")
        _check.seconds(self.login_timeout, "login_timeout")

    @classmethod
    def merge(cls, url: Optional[IscsiUrl], options: Dict[str, Any]) -> "LoginOptions":
        """Options from the URL, overridden by keyword arguments of the same name."""
        fields: Dict[str, Any] = {}
        if url is not None:
            for name in ("user", "password", "target_user", "target_password", "header_digest"):
                value = getattr(url, name)
                if value is not None:
                    fields[name] = value
        for name in ("initiator_name", "user", "password", "target_user", "target_password", "header_digest",
                     "data_digest", "alias", "login_timeout"):
            if name in options:
                value = options.pop(name)
                if value is not None:
                    fields[name] = value
        return cls(**fields)


# -- connecting and logging in (without a reactor) ------------------------------------

_LOGIN_STATUS_RE = re.compile(r"Status:\s*(.*?)\((\d+)\)")
_LOGOUT_SECONDS = 1.0


def _where(url: IscsiUrl) -> str:
    return f"{url.target} at {url.portal}" if url.target else url.portal


def _connect_error(url: IscsiUrl, reason: str) -> IscsiConnectError:
    """What a failed TCP connect means, from libiscsi's text (which carries the errno in parentheses)."""
    m = re.search(r"\((\d+)\)", reason)
    err = int(m.group(1)) if m else 0
    if err == _errno.ECONNREFUSED:
        return IscsiConnectionRefused(err, f"cannot connect to {url.portal}: connection refused (nothing listens "
                                           "there: is the host or the port wrong, or the target not running?)")
    if "resolv" in reason.lower():
        return IscsiConnectError(_errno.EHOSTUNREACH,
                                 f"cannot connect to {url.portal}: the host name {url.host!r} does not resolve")
    return IscsiConnectError(err, f"cannot connect to {url.portal}: {reason or 'the connection failed'}")


def _login_error(url: IscsiUrl, reason: str, opts: LoginOptions) -> LoginFailed:
    """Turn libiscsi's login failure text into the exception a person can act on."""
    m = _LOGIN_STATUS_RE.search(reason)
    status = int(m.group(2)) if m else None
    where = _where(url)
    if status in (_LOGIN_NOT_FOUND, _LOGIN_REMOVED) and url.target:
        targets: List[str] = []
        try:
            targets = [t.name for t in send_targets(url.portal, initiator_name=opts.initiator_name,
                                                    timeout=min(opts.login_timeout, 5.0))]
        except Exception:  # listing them is a courtesy; the error stands without it
            pass
        there = ("; targets there: " + ", ".join(targets)) if targets else ""
        return UnknownTarget(f"no target named {url.target!r} at {url.portal} (login status "
                             f"{status:04X}h: {m.group(1) if m else reason}){there}",
                             status=status, reason=reason, targets=targets)
    if status == _LOGIN_AUTHORIZATION:
        return AuthorizationFailed(
            f"{where}: initiator {opts.initiator_name!r} is not allowed to log in (login status 0202h); "
            "allow this initiator name or address on the target, or pass initiator_name=",
            status=status, reason=reason)
    if status is None and "CHAP" in reason and opts.target_user is not None:
        return AuthenticationFailed(
            f"{where}: mutual CHAP failed: the target did not prove it knows the secret of "
            f"{opts.target_user!r} ({reason})", status=status, reason=reason)
    if status == _LOGIN_AUTHENTICATION or (status is None and "CHAP" in reason):
        if opts.user is None:
            hint = "the target wants CHAP: pass user= and password= (or user%password@ in the URL)"
        else:
            hint = f"check the CHAP user {opts.user!r} and its secret"
        code = "login status 0201h" if status is not None else reason
        return AuthenticationFailed(f"{where}: authentication failed ({code}); {hint}", status=status, reason=reason)
    detail = f"login status {status:04X}h: {m.group(1)}" if m and status is not None else reason or "no reason given"
    return LoginFailed(f"{where}: login failed ({detail})", status=status, reason=reason)


def _step(conn: Any, url: IscsiUrl, opts: LoginOptions, step: str, deadline: float) -> None:
    """Run one of connect/login/discovery to its end; raise what a person can act on.

    A step that has not ended is a timeout only while the socket lives:
    when libiscsi gave up on it (``conn.lost``: the peer closed it, or sent
    bytes that are no PDU), waiting longer cannot help, and the error says
    so at once.
    """
    limit = opts.login_timeout
    if conn.start(step, url.portal) != 0:
        reason = conn.error()
        if step == "connect":
            raise _connect_error(url, reason)
        raise LoginFailed(f"{_where(url)}: cannot start the {step}: {reason}", reason=reason)
    conn.run(lambda: conn.step_result()[0], deadline)
    done, status, reason = conn.step_result()
    if done and status == 0:
        return
    reason = reason or conn.error()
    if step == "connect":
        if not done and not conn.lost:
            raise IscsiConnectError(_errno.ETIMEDOUT, f"cannot connect to {url.portal}: no answer within "
                                                      f"{limit:g} s (login_timeout=)")
        raise _connect_error(url, reason)
    if conn.lost and (not done or _LOGIN_STATUS_RE.search(reason) is None):
        # The socket ended before any Login Response (or text response)
        # came: every iSCSI target answers a Login Request, even to refuse
        # it (RFC 7143 11.13), so the peer closed the connection or sent
        # bytes that are no iSCSI PDU.
        if step == "login":
            raise NotAnIscsiPortal(f"{url.portal} is not an iSCSI target: it closed the connection (or sent "
                                   "something that is not iSCSI) instead of answering the login")
        raise IscsiConnectError(_errno.ECONNRESET, f"{_where(url)}: the connection was lost during the {step}")
    if not done:
        what = "Login Response" if step == "login" else "answer to SendTargets"
        hint = " (is this an iSCSI target's port?)" if step == "login" else ""
        raise IscsiConnectError(_errno.ETIMEDOUT, f"{_where(url)}: connected, but no {what} within {limit:g} s"
                                                  f"{hint}")
    if step == "login":
        raise _login_error(url, reason, opts)
    raise LoginFailed(f"{_where(url)}: the {step} failed ({reason or 'no reason given'})", reason=reason)


def _open_connection(url: IscsiUrl, opts: LoginOptions, *, discovery: bool, lun: int) -> Any:
    """Connect and log in, synchronously, within ``opts.login_timeout``; the logged-in :class:`_b.Connection`.

    ``discovery``: a discovery session (RFC 7143 4.3), else a normal one to
    ``url.target``.
    """
    deadline = time.monotonic() + opts.login_timeout
    conn = _b.Connection(opts.initiator_name)
    try:
        try:
            conn.configure(target=None if discovery else url.target, discovery=discovery, lun=lun,
                           header_digest=opts.header_digest, user=opts.user, password=opts.password,
                           target_user=opts.target_user, target_password=opts.target_password,
                           alias=opts.alias)
        except ValueError as exc:
            raise LoginFailed(f"{url.redacted()}: {exc}") from None
        _step(conn, url, opts, "connect", deadline)
        _step(conn, url, opts, "login", deadline)
        return conn
    except BaseException:
        conn.close()
        raise


def _logout(conn: Any, seconds: float) -> None:
    """Log out politely (best effort, bounded)."""
    try:
        if conn.logged_in() and conn.start("logout") == 0:
            conn.run(lambda: conn.step_result()[0], time.monotonic() + seconds)
    except Exception:
        pass


def _close(conn: Any) -> None:
    """Log out (bounded, best effort) and release the connection."""
    try:
        _logout(conn, _LOGOUT_SECONDS)
    finally:
        conn.close()


# -- discovery ---------------------------------------------------------------------

_PORTAL_FORM = "HOST[:PORT] (192.0.2.10, target.example:3260, [fe80::1]:3260) or iscsi://HOST[:PORT]"
_HOST_PORT_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?))"
                           r"(?::(?P<port>[0-9]+))?$")
# RFC 7143 13.8: TargetAddress=domainname[:port][,portal-group-tag]; an IPv6 address in brackets.
_ADDRESS_RE = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:,\[\]]*))(?::(?P<port>[0-9]+))?(?:,(?P<tpgt>[0-9]+))?$")
_UNIT_ATTENTION_TRIES = 5


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Portal:
    """An iSCSI network portal: ``host`` (a name or an address), ``port`` and, as a target reports it, ``tpgt``.

    ``tpgt`` is the target portal group tag of a ``TargetAddress`` (None in
    a portal given by hand).  ``str()`` gives ``host:port``, IPv6 addresses
    in brackets.
    """

    host: str
    port: int = DEFAULT_PORT
    tpgt: Optional[int] = None

    def __str__(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"

    @classmethod
    def from_address(cls, text: str) -> "Portal":
        """A ``TargetAddress`` value, ``host[:port][,tpgt]`` (RFC 7143 13.8); else the text itself as the host."""
        m = _ADDRESS_RE.match(text)
        if m is None or not (m.group("v6") or m.group("host")):
            return cls(host=text)
        port = int(m.group("port")) if m.group("port") else DEFAULT_PORT
        tpgt = int(m.group("tpgt")) if m.group("tpgt") else None
        return cls(host=m.group("v6") or m.group("host"), port=port, tpgt=tpgt)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Lun:
    """One logical unit of a target: its number, its URL, and what INQUIRY says of it.

    ``device_type`` is the peripheral device type (SPC-5 6.7.2): a
    :class:`~sgpy.constants.PeripheralDeviceType` (an int: ``DISK`` 00h,
    ``STORAGE_ARRAY`` 0Ch...) or, for a code sgpy does not name, the int;
    None when INQUIRY failed, and ``vendor`` and ``product`` are then empty.
    """

    lun: int
    url: str
    device_type: Optional[int] = None
    vendor: str = ""
    product: str = ""

    @property
    def device_type_name(self) -> Optional[str]:
        """The device type in lower case (``disk``, ``storage_array``), ``type_XXh`` for a code sgpy does not name."""
        if self.device_type is None:
            return None
        try:
            return PeripheralDeviceType(self.device_type).name.lower()
        except ValueError:
            return f"type_{self.device_type:02x}h"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Target:
    """One target of a SendTargets answer: its iSCSI ``name``, its ``portals`` and its ``luns``.

    ``portals`` are the ``TargetAddress`` values as the target sent them
    (``host[:port][,tpgt]``, RFC 7143 13.8); :attr:`addresses` gives them
    as :class:`Portal` values.  ``luns`` is empty when LUNs were not asked
    for (``luns=False``, :func:`send_targets`) or the target could not be
    asked; ``error`` then says why (CHAP required, this initiator not
    allowed...).
    """

    name: str
    portals: Tuple[str, ...] = ()
    luns: Tuple[Lun, ...] = ()
    error: Optional[str] = None

    @property
    def iqn(self) -> str:
        """The target's iSCSI name: the same as ``name``."""
        return self.name

    @property
    def addresses(self) -> Tuple[Portal, ...]:
        """``portals`` as :class:`Portal` values (host, port, portal group tag)."""
        return tuple(Portal.from_address(p) for p in self.portals)

    @property
    def urls(self) -> Tuple[str, ...]:
        """The ``iscsi://`` URL of each LUN (empty when there are no LUNs)."""
        return tuple(lun.url for lun in self.luns)


#: The names :func:`discover` gave its values first; the same classes.
DiscoveredTarget = Target
DiscoveredLun = Lun


def _portal_url(portal: str) -> IscsiUrl:
    """The portal as a URL without target (credentials kept); IscsiUrlError shows the portal's form."""
    if not isinstance(portal, str):
        raise IscsiUrlError(f"a portal is a str, not {type(portal).__name__}")
    text = portal.strip()
    if text[:8].lower() == "iscsi://":
        try:
            url = IscsiUrl.from_string(text, need_lun=False)
        except IscsiUrlError:
            raise IscsiUrlError(f"not a portal: {IscsiUrl(host='x', text=text).redacted()!r}; expected "
                                f"{_PORTAL_FORM}") from None
        if url.target is not None:
            raise IscsiUrlError(f"{url.redacted()!r} names a target: discovery asks a portal, "
                                f"iscsi://HOST[:PORT] with nothing after it")
        return url
    m = _HOST_PORT_RE.match(text)
    if m is None:
        hint = ""
        if text.count(":") > 1 and "[" not in text:
            hint = " (an IPv6 address goes in brackets: [fe80::1]:3260)"
        elif "/" in text:
            hint = " (a portal names no target: give the host and the port alone)"
        raise IscsiUrlError(f"not a portal: {text!r}; expected {_PORTAL_FORM}{hint}")
    port = DEFAULT_PORT
    if m.group("port"):
        port = int(m.group("port"))
        if not 0 < port < 65536:
            raise IscsiUrlError(f"{text!r}: port {port} is out of range (1..65535)")
    host = m.group("v6") or m.group("host")
    return IscsiUrl(host=host, port=port, text=f"iscsi://{_bracketed(host)}:{port}")


def parse_portal(portal: str) -> Portal:
    """``HOST[:PORT]`` or ``iscsi://HOST[:PORT]`` as a :class:`Portal`; :class:`IscsiUrlError` if it is neither."""
    url = _portal_url(portal)
    return Portal(host=url.host, port=url.port)


def _options(url: IscsiUrl, options: Dict[str, Any], timeout: float, caller: str) -> LoginOptions:
    options = dict(options)
    options.setdefault("login_timeout", timeout)
    opts = LoginOptions.merge(url, options)
    if options:
        raise TypeError(f"{caller}() got unexpected keyword(s) {sorted(options)}")
    return opts


def _send_targets(url: IscsiUrl, opts: LoginOptions) -> Tuple[Target, ...]:
    conn = _open_connection(url, opts, discovery=True, lun=0)
    try:
        _step(conn, url, opts, "discovery", time.monotonic() + opts.login_timeout)
        return tuple(Target(name=name, portals=portals) for name, portals in conn.discovery_targets())
    finally:
        _close(conn)


def send_targets(portal: str, *, timeout: float = DEFAULT_LOGIN_TIMEOUT, **options: Any) -> Tuple[Target, ...]:
    """The targets ``portal`` offers (``SendTargets=All`` in a discovery session), without their LUNs.

    ``portal`` and ``options`` as for :func:`discover`; ``timeout`` bounds
    the session, in seconds.
    """
    url = _portal_url(portal)
    return _send_targets(url, _options(url, options, timeout, "send_targets"))


def _ask(conn: Any, cmd: Any, lun: int, where: str, deadline: float) -> Optional[bytes]:
    """``cmd``'s data from ``lun`` (after at most a few unit attentions), or None when it failed on the target."""
    for _ in range(_UNIT_ATTENTION_TRIES):
        got = conn.run_command(lun, bytes(cmd.cdb), 1, cmd.transfer_bytes(), deadline=deadline)
        if got is None:
            raise IscsiConnectError(_errno.ETIMEDOUT, f"{where}: no answer to {cmd.name} for LUN {lun} "
                                                      f"({conn.error() or 'timed out'})")
        status, data, sense = got
        if status < 0:
            raise IscsiConnectError(_errno.ECONNRESET, f"{where}: {cmd.name} for LUN {lun} failed: the session "
                                                       f"ended ({conn.error() or 'connection lost'})")
        # A new I_T nexus reports a unit attention to its first command, which was not run (SAM-6 5.14).
        if status == ScsiStatus.CHECK_CONDITION and len(sense) >= 3 and \
                (sense[2] if sense[0] & 0x7F in (0x70, 0x71) else sense[1]) & 0x0F == SenseKey.UNIT_ATTENTION:
            continue
        return data if status == ScsiStatus.GOOD else None
    return None


def _luns(conn: Any, url: IscsiUrl, deadline: float) -> Tuple[Lun, ...]:
    """REPORT LUNS at LUN 0 (again with room for all when the first answer was cut), then INQUIRY of each."""
    from sgpy.cdb.spc import Inquiry, ReportLuns
    from sgpy.results import parse_result

    where = _where(url)
    cmd = ReportLuns()
    data = _ask(conn, cmd, 0, where, deadline)
    if data is None:
        raise LoginFailed(f"{where}: REPORT LUNS failed on LUN 0")
    report = parse_result(cmd, data)
    if report.truncated:  # more LUNs than 4 KiB lists: ask again for all of them
        cmd = ReportLuns(allocation_length=report.wanted_length)
        data = _ask(conn, cmd, 0, where, deadline)
        if data is None:
            raise LoginFailed(f"{where}: REPORT LUNS failed on LUN 0")
        report = parse_result(cmd, data)
    found: List[Lun] = []
    for number in report.linux_luns:
        lun_url = str(url.with_lun(number))
        inq_data = _ask(conn, Inquiry(), number, where, deadline)
        if not inq_data:
            found.append(Lun(number, lun_url))
            continue
        inq = parse_result(Inquiry(), inq_data)
        if inq.peripheral_qualifier == 3:  # SPC-5 6.7.2: no logical unit at this LUN
            continue
        found.append(Lun(number, lun_url, inq.peripheral_device_type, inq.vendor, inq.product))
    return tuple(found)


def discover(
    portal: str,
    *,
    luns: bool = True,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    **options: Any,
) -> Tuple[Target, ...]:
    """The targets ``portal`` offers and, unless ``luns=False``, the LUNs of each.

    ``portal``: ``HOST[:PORT]`` (``[v6addr]:PORT`` for IPv6) or
    ``iscsi://[user[%password]@]HOST[:PORT]``; the port defaults to 3260.
    A discovery session asks ``SendTargets=All`` (RFC 7143 appendix C);
    with ``luns=True`` a session to each target then asks LUN 0 for REPORT
    LUNS and each LUN for INQUIRY.  Each LUN's URL carries the host and the
    port asked here (an address a target reports for itself need not be
    reachable from here) and no secret.  ``options``: those of
    :class:`LoginOptions`, for every session.  ``timeout`` bounds each
    session, in seconds.  Synchronous, one connection at a time; no
    reactor, no thread.

    Raises, each naming the portal: :class:`IscsiUrlError` (the portal
    does not parse), :class:`IscsiConnectionRefused`,
    :class:`IscsiConnectError` (no route, unknown host, no answer in
    time), :class:`NotAnIscsiPortal`, :class:`AuthenticationFailed` /
    :class:`AuthorizationFailed` / :class:`LoginFailed` (the discovery
    login was refused).  A target whose own login fails is still listed,
    with ``error`` saying why and no LUNs.
    """
    url = _portal_url(portal)
    opts = _options(url, options, timeout, "discover")
    found = _send_targets(url, opts)
    if not luns:
        return found
    out = []
    for target in found:
        # The LUNs' URLs carry no credentials (they are printed): the options hold them.
        turl = IscsiUrl(host=url.host, port=url.port, target=target.name)
        try:
            conn = _open_connection(turl, opts, discovery=False, lun=0)
        except IscsiError as exc:
            out.append(attr.evolve(target, error=str(exc)))
            continue
        try:
            out.append(attr.evolve(target, luns=_luns(conn, turl, time.monotonic() + timeout)))
        except IscsiError as exc:
            out.append(attr.evolve(target, error=str(exc)))
        finally:
            _close(conn)
    return tuple(out)


# -- the channel ------------------------------------------------------------------------


class _Endpoint:
    """The session's socket as the reactor sees it (a :class:`sgpy.transport.Endpoint`)."""

    __slots__ = ("fd", "channel", "inflight", "closed", "events")

    def __init__(self, channel: "IscsiChannel") -> None:
        self.fd = -1
        self.channel = channel
        self.inflight: Dict[int, Io] = {}
        self.closed = False
        self.events = 0

    def on_events(self, events: int) -> int:
        return self.channel._on_socket(events)

    def settle(self) -> int:
        return 0  # completions are delivered as libiscsi's callbacks record them; nothing is held

    def close(self) -> None:
        self.channel._drop_connection(polite=True)

    def __repr__(self) -> str:
        return f"IscsiEndpoint(fd={self.fd}, inflight={len(self.inflight)})"


class _TimerEndpoint:
    """The channel's timerfd: command timeouts and reconnection steps."""

    __slots__ = ("fd", "channel", "inflight", "closed", "timer")

    def __init__(self, channel: "IscsiChannel", timer: Any) -> None:
        self.timer = timer
        self.fd = timer.fd
        self.channel = channel
        self.inflight: Dict[int, Io] = {}  # never holds anything: the socket endpoint does
        self.closed = False

    def on_events(self, events: int) -> int:
        self.timer.drain()
        return self.channel._on_tick()

    def settle(self) -> int:
        return 0

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class _SessionTransport(Transport):
    """An iSCSI channel's queue, session endpoint and counts, as the reactor drives them."""

    def __init__(self, channel: "IscsiChannel") -> None:
        super().__init__(channel.path, channel.reactor, reissue=channel._wants_reissue, on_close=channel.close,
                         on_inherit=channel._inherit, name=repr(channel))
        self.channel = channel

    def pump(self) -> None:
        self.channel._pump()

    def lost(self, err: int, untaken: Sequence[Io] = ()) -> None:
        why = f"{self.path}: the session is gone ({os.strerror(err)})"
        for io in untaken:
            self.reactor.fail(io, DeviceGone(why, io=io, command=io.command, host_status=_DID_NO_CONNECT))
        self.channel._fail_all(why)


_READY = "ready"
_RECONNECTING = "reconnecting"
_GONE = "gone"
_CLOSED = "closed"


class IscsiChannel(Channel):
    """A channel to one LUN of an iSCSI target, through libiscsi, on a :class:`~sgpy.reactor.Reactor`.

    Open with :meth:`from_url` (or ``sgpy.Channel.from_url``).  Everything a
    channel does works the same: ``execute``, ``execute_many``,
    ``async_=True``, ``poll``/``wait``, ``channel.cmd.X(...)``, handlers and
    verify handlers, ``read_only``/``policy``, ``block_size``,
    ``close``/``with``.  Completions fill ``io.hdr`` like sg's: the SCSI
    status byte, ``masked_status``, ``driver_status`` 08h when sense came
    back, ``resid`` from the iSCSI residual underflow count, ``duration``
    in ms, the sense bytes; and raise the same exceptions.

    Transport outcomes map to sg's host codes: a timed-out command fails
    with :class:`~sgpy.errors.CommandTimeout` (``DID_TIME_OUT``; an ABORT
    TASK goes to the target, and the buffer is kept until the target lets
    go of the command); a protocol error with
    :class:`~sgpy.errors.HostError` (``DID_ERROR``); a lost connection with
    :class:`~sgpy.errors.DeviceGone` (``DID_NO_CONNECT``), every pending IO
    exactly once, after which the channel refuses new commands.

    ``reconnect=SECONDS`` (off by default) keeps the channel through a lost
    connection instead: for up to that long it tries to log in again (once
    a second); then it clears the new session's unit attentions with TEST
    UNIT READY and sends again, in their original order, the commands that
    were in flight, followed by the queued ones.  A command in flight when
    the connection dropped may therefore have been executed by the target
    twice; commands whose timeout passed meanwhile fail with
    CommandTimeout.  If no login succeeds in time, every pending IO fails
    with DeviceGone.
    """

    _limit_source = "the channel's max_transfer= option"

    #: A SCSI Command PDU carries the CDB in its 16-byte CDB field; a longer
    #: one needs an additional header segment (RFC 7143 11.3.5), which
    #: libiscsi does not send (SCSI_CDB_MAX_SIZE, scsi-lowlevel.h).  Six bytes
    #: is SCSI's shortest CDB (SPC-5 4.2.5).
    cdb_lengths: Tuple[int, int] = (6, 16)
    _cdb_source = "an iSCSI SCSI Command PDU's CDB field, with no additional header segment from libiscsi"

    def __init__(
        self,
        url: Union[str, IscsiUrl],
        *,
        reactor: Optional[Reactor] = None,
        timeout: int = DEFAULT_TIMEOUT_MS,
        read_only: bool = False,
        policy: Any = None,
        reissue: bool = True,
        block_size: Optional[int] = None,
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
        max_transfer: int = DEFAULT_MAX_TRANSFER,
        reconnect: Union[bool, float, None] = None,
        max_fds: Optional[int] = None,
        **login: Any,
    ) -> None:
        # Every argument is checked before anything is opened.
        timeout = _check.timeout_ms(timeout)
        policy = _check.policy(policy)
        block_size = _check.block_size(block_size)
        _check.whole(queue_depth, "queue_depth")
        _check.whole(max_transfer, "max_transfer")
        if max_fds is not None:
            _check.whole(max_fds, "max_fds")
        _b.require()
        del max_fds  # an sg option, accepted so the same call opens either kind; one session here
        if isinstance(url, str):
            url = IscsiUrl.from_string(url)
        if url.target is None or url.lun is None:
            raise IscsiUrlError(f"{url.redacted()}: a channel needs the target IQN and the LUN ({_URL_SYNTAX})")
        if queue_depth < 1:
            raise ValueError("queue_depth must be at least 1")
        opts = LoginOptions.merge(url, login)
        if login:
            raise TypeError(f"unexpected option(s) for an iSCSI channel: {sorted(login)}")
        # The attributes Channel.__init__ sets (it needs a device fd, so it is not called).
        self.path = url.redacted()
        self.timeout = timeout
        self.read_only = read_only
        self.policy = policy
        self.reissue = reissue
        self._block_size = block_size
        self._closed = False
        self._owns_fd = False
        self._dxfer = _DIR
        self._max_transfer = max_transfer
        self._sync_callers: Deque[Any] = collections.deque()
        self._sync_fds: List[int] = []
        # Channel.close()'s bookkeeping of synchronous callers (an iSCSI
        # channel has none, so close() has nothing to wait for).
        self._use_lock = threading.Lock()
        self._sync_idle = threading.Condition(self._use_lock)
        self._sync_busy: Deque[int] = collections.deque()
        self._orphaned = False
        self._fd_closed = False
        self._num_blocks: Optional[int] = None
        self.cmd = cast("Commands", CommandNamespace(self))
        self.kind = "iscsi"
        self.sync_only = False
        self._fd = -2  # no device fd (and never equal to a detached endpoint's -1)
        # iSCSI's own.
        self.url = url
        self.options = opts
        self.queue_depth = queue_depth
        self.reconnect = float(reconnect) if reconnect not in (None, False) else 0.0
        if reconnect is True:
            self.reconnect = 60.0
        self.inquiry: Any = None
        self.reconnects = 0
        self._state = _READY
        self._conn: Any = None
        self._lost_reason = ""
        self._retry_at = 0.0
        self._give_up_at = 0.0
        self._rstep = ""
        self._ua_left = 0
        self.unit_attentions: Any = collections.deque(maxlen=UNIT_ATTENTIONS_KEPT)
        self._attempt_deadline = 0.0
        self.reactor = reactor if reactor is not None else default_reactor()
        self.transport = _SessionTransport(self)
        self._ep = _Endpoint(self)
        conn = _open_connection(url, opts, discovery=False, lun=url.lun)
        timer = None
        try:
            timer = _b.Timer()
            self._tick_ep = _TimerEndpoint(self, timer)
            self.reactor.add_transport(self.transport)
        except BaseException:
            conn.close()
            if timer is not None:
                os.close(timer.fd)
            raise
        with self.reactor.lock:
            self._attach(conn)
            self.transport.endpoints.append(self._ep)
            self.reactor.register(self._tick_ep)
        try:
            self._check_lun()
        except BaseException:
            self.close()
            raise

    # -- construction --------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "IscsiChannel":  # type: ignore[override]
        """Log in to ``iscsi://[user%password@]host[:port]/target-iqn/lun`` and return the channel.

        Options: ``reactor``, ``timeout`` (ms per command, default 60000),
        ``read_only``, ``policy``, ``reissue``, ``block_size``,
        ``queue_depth`` (commands in flight, default 64), ``max_transfer``
        (bytes per command, default 32 MiB), ``reconnect`` (seconds to keep
        trying after a lost connection; default off), and the login options
        of :class:`LoginOptions` (``initiator_name``, ``user``,
        ``password``, ``target_user``, ``target_password``,
        ``header_digest``, ``data_digest``, ``alias``, ``login_timeout``).

        Raises :class:`IscsiConnectionRefused` / :class:`IscsiConnectError`,
        :class:`UnknownTarget`, :class:`AuthenticationFailed`,
        :class:`AuthorizationFailed`, :class:`LoginFailed` or
        :class:`NoSuchLun`, each naming what to change.
        """
        return cls(url, **options)

    @classmethod
    def from_path(cls, path: str, **options: Any) -> "IscsiChannel":  # type: ignore[override]
        """Same as :meth:`from_url` (an iSCSI channel's "path" is its URL)."""
        return cls(path, **options)

    @classmethod
    def from_fd(cls, fd: int, *, close: bool = False, **options: Any) -> "Channel":
        """Not available: an iSCSI channel owns its connection."""
        raise TypeError("an iSCSI channel is opened from its URL (IscsiChannel.from_url), not from an fd")

    def __repr__(self) -> str:
        return f"Channel({self.path!r})"

    def _check_lun(self) -> None:
        """INQUIRY the LUN: a LUN the target does not have raises :class:`NoSuchLun`."""
        from sgpy.cdb.spc import Inquiry, ReportLuns
        from sgpy.handler import might_fail

        io = self.execute(Inquiry(), verify_handler=might_fail)
        missing = False
        if io.error is not None:
            if isinstance(io.error, CheckCondition) and io.error.sense_key == SenseKey.ILLEGAL_REQUEST \
                    and io.error.asc == 0x25:  # ASC 25h: LOGICAL UNIT NOT SUPPORTED (SPC-5 ASC/ASCQ table)
                missing = True
            elif not isinstance(io.error, CheckCondition):
                raise io.error
        else:
            inq = io.result
            # SPC-5 6.7.2: peripheral qualifier 011b = no logical unit at this LUN.
            if inq is not None and inq.peripheral_qualifier == 3:
                missing = True
            self.inquiry = inq
        if not missing:
            # A new session has unit attentions pending (SAM-6 5.14: at least
            # I_T NEXUS LOSS OCCURRED, 29h/07h, or POWER ON, 29h/00h).  As the
            # kernel's initiator does after a login, report them now with TEST
            # UNIT READY, which INQUIRY did not (SPC-5 5.14), so that the
            # caller's first command runs; they are kept in unit_attentions.
            from sgpy.cdb.spc import TestUnitReady

            self.execute_own(TestUnitReady())
        if missing:
            luns: Tuple[int, ...] = ()
            # Ask LUN 0: a target need not answer REPORT LUNS at a LUN it does not have.
            ptr = self._conn.ptr
            try:
                ptr.lun = 0
                rl = self.execute(ReportLuns(), verify_handler=might_fail)
                if rl.error is None and rl.result is not None:
                    luns = tuple(rl.result.linux_luns)
            except SgError:
                pass
            finally:
                if self._conn is not None:
                    self._conn.ptr.lun = self.url.lun
            have = ", ".join(str(n) for n in luns) if luns else "none reported"
            raise NoSuchLun(f"{self.url.target} at {self.url.portal} has no LUN {self.url.lun} "
                            f"(LUNs there: {have})", luns=luns)

    # -- limits --------------------------------------------------------------

    @property
    def max_transfer(self) -> int:
        """Largest single transfer in bytes (``max_transfer=``, default 32 MiB)."""
        return self._max_transfer or DEFAULT_MAX_TRANSFER

    # -- the session ------------------------------------------------------------

    def _attach(self, conn: Any) -> None:
        """Make ``conn`` the channel's session and watch its socket (lock held)."""
        self._conn = conn
        ep = self._ep
        ep.fd = conn.fileno()
        ep.events = conn.which_events()
        ep.closed = False
        self.reactor.register(ep, ep.events)

    def _watch(self) -> None:
        """Follow the events libiscsi wants (POLLIN/POLLOUT are EPOLLIN/EPOLLOUT's values)."""
        ep = self._ep
        conn = self._conn
        if conn is None or ep.closed:
            return
        ev = _b.lib.iscsi_which_events(conn.ptr.ctx)
        if ev != ep.events:
            ep.events = ev
            self.reactor.modify(ep, ev)

    def _drop_connection(self, polite: bool = False) -> None:
        """Release the libiscsi context (after the reactor unregistered the socket)."""
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        conn.cancel_all()
        if polite and self._state == _READY and not conn.lost:
            _logout(conn, _LOGOUT_SECONDS)
        conn.close()

    # -- submitting --------------------------------------------------------------

    def _pump(self) -> None:
        """Send queued IOs while fewer than ``queue_depth`` are in flight (lock held)."""
        q = self.transport.queue
        if not q or self._state != _READY:
            return
        ep = self._ep
        inflight = ep.inflight
        room = self.queue_depth - len(inflight)
        if room <= 0:
            return
        conn = self._conn
        ptr = conn.ptr
        submit = _b.lib.sgpy_iscsi_submit
        null = _b.ffi.NULL
        ids = self.reactor.pack_ids
        dirs = _DIR
        now = time.monotonic()
        sent = 0
        while q and room > 0:
            io = q.popleft()
            cmd = io.command
            ident = next(ids)
            cdb = cmd.cdb
            buf = io._cbuf
            rc = submit(ptr, ident, cdb, len(cdb), dirs[cmd.direction], null if buf is None else buf, io.length)
            if rc:
                self._refused(io, rc)
                if self._conn is not conn:
                    return  # a handler closed the channel
                continue
            io._pack_id = ident
            io._submitted_at = now
            inflight[ident] = io
            room -= 1
            sent += 1
        if sent:
            self.transport.submitted += sent
            self.reactor.submitted += sent
            # Write the PDUs now rather than one epoll round later.
            rc = _b.lib.sgpy_iscsi_flush(ptr)
            if rc < 0 or ptr.lost:
                self._session_lost(conn.error())
                return
            self._watch()
            if not self._tick_ep.timer.armed:
                self._tick_ep.timer.arm(_TICK_MS)

    def _cdb_refused(self, cmd: Any, n: int) -> EncodeError:
        """CdbTooLong for a CDB above 16 bytes, CdbLengthError for one under 6."""
        err = super()._cdb_refused(cmd, n)
        if n > self.cdb_lengths[1]:
            return CdbTooLong(f"{err} (libiscsi sends at most {_b.CDB_MAX} bytes)")
        return err

    def _refused(self, io: Io, rc: int) -> None:
        if rc == -2:  # _make_io refuses such CDBs first; the extension checks again
            err: BaseException = self._cdb_refused(io.command, len(io.command.cdb))
        else:
            err = TaskFailed(f"{self.path}: libiscsi refused the command: {self._conn.error()}",
                             io=io, command=io.command)
        self.reactor.fail(io, err)

    # -- completions -------------------------------------------------------------

    def _on_socket(self, events: int) -> int:
        """The reactor saw ``events`` on the socket (lock held); return completions processed."""
        conn = self._conn
        if conn is None:
            return 0
        if self._state == _RECONNECTING:
            return self._reconnect_progress(events)
        ptr = conn.ptr
        rc = _b.lib.sgpy_iscsi_service(ptr, events)
        n = self._complete(conn) if ptr.ndone else 0
        if self._conn is not conn:
            return n  # a handler closed the channel
        if rc < 0 or ptr.lost:
            hup = events & (_b.lib.POLLHUP | _b.lib.POLLERR)
            self._session_lost("the target closed the connection" if hup or rc >= 0 else conn.error())
            return n
        if self.transport.queue and len(self._ep.inflight) < self.queue_depth:
            self._pump()  # handlers queued more
        self._watch()
        return n

    def _complete(self, conn: Any) -> int:
        """Finish the IOs whose records libiscsi's callbacks wrote.

        The IOs leave ``inflight`` first and the queue refills the freed
        places at once, so the target works on new commands while their
        predecessors' handlers run here.
        """
        n, ints = conn.take()
        rec = _b.REC
        senses: Dict[int, bytes] = {}
        for i in range(4, n * rec, rec):
            if ints[i]:
                senses[i] = conn.sense(i // rec, ints[i])
        conn.taken()
        lost = conn.lost
        inflight = self._ep.inflight
        reactor = self.reactor
        cancelled = _b.CANCELLED
        ready = []
        for b in range(0, n * rec, rec):
            ident = ints[b]
            if ints[b + 1] == cancelled and lost:
                continue  # the session is gone: _session_lost deals with it
            io = inflight.pop(ident, None)
            if io is None:
                continue
            if io.__class__ is Output:
                io._let_go()  # libiscsi is done with the data-out buffer
            if io.returned or io._abandoned:
                reactor.abandoned.pop(ident, None)
                continue  # timed out earlier; the target has let go of it now
            ready.append((b, io))
        if self.transport.queue and not lost:
            self._pump()
        finish = reactor.finish
        classify = reactor.classify
        for b, io in ready:
            status = ints[b + 1]
            if status == 0 and not ints[b + 4]:
                io.hdr = Header(0, 0, 0, 0, 0, ints[b + 2], ints[b + 3], 0, b"")
                finish(io)
            elif status >= 0:
                sense = senses.get(b + 4, b"")
                ok = (status == 0 or status == _CONDITION_MET) and not sense
                io.hdr = Header(status, (status >> 1) & 0x7F, 0, 0, _DRIVER_SENSE if sense else 0, ints[b + 2],
                                ints[b + 3], 0 if ok else 1, sense)
                if ok:
                    finish(io)
                else:
                    classify(io)
            else:
                io.hdr = Header(0, 0, 0, _DID_ERROR, 0, io.length, ints[b + 3], 1, b"")
                if status == cancelled:
                    reason = "libiscsi cancelled the command"
                elif status == _b.ERROR:
                    reason = conn.error()
                else:
                    reason = "libiscsi timed the command out"
                io.error = HostError(f"{self.path}: iSCSI transport error ({reason})", io=io, command=io.command,
                                     host_status=_DID_ERROR)
                finish(io)
        return len(ready)

    # -- timeouts and reconnection ------------------------------------------------

    def _on_tick(self) -> int:
        """The timer fired (lock held)."""
        now = time.monotonic()
        if self._state == _READY:
            inflight = self._ep.inflight
            expired = [(ident, io) for ident, io in inflight.items()
                       if not io.returned and not io._abandoned and now - io._submitted_at >= io.timeout / 1000.0]
            for ident, io in expired:
                self._time_out(ident, io, now)
            if expired and self._conn is not None:
                _b.lib.sgpy_iscsi_flush(self._conn.ptr)  # the ABORT TASKs
                self._watch()
            if not inflight and self._tick_ep.timer.armed:
                self._tick_ep.timer.disarm()
            return len(expired)
        if self._state == _RECONNECTING:
            if self._conn is not None:
                n = self._reconnect_progress(0)
                if self._state != _RECONNECTING:
                    return n
                if self._conn is not None and now >= self._attempt_deadline:
                    self._reconnect_failed()  # this attempt hangs: start another
            if now >= self._give_up_at:
                self._give_up(f"no new session within reconnect={self.reconnect:g} s")
            elif self._conn is None and now >= self._retry_at:
                self._try_connect()
            else:
                self._expire_queued(now)
            return 0
        self._tick_ep.timer.disarm()
        return 0

    def _time_out(self, ident: int, io: Io, now: float) -> None:
        """Fail ``io`` with CommandTimeout; ``ident`` set: it is on the session, abort it there."""
        if ident and self._conn is not None:
            self._conn.abort(ident)
            what = ("ABORT TASK was sent to the target (the buffer is kept until the target lets go of "
                    "the command)")
        else:
            what = "the connection was lost meanwhile and no new session came up in time"
        elapsed = int((now - io._submitted_at) * 1000)
        io.hdr = Header(0, 0, 0, _DID_TIME_OUT, 0, io.length, elapsed, 1, b"")
        self.reactor.fail(io, CommandTimeout(f"{self.path}: no answer within {io.timeout} ms; {what}",
                                              io=io, command=io.command, host_status=_DID_TIME_OUT))

    def _session_lost(self, reason: str) -> None:
        """The connection dropped (lock held): reconnect, or fail everything pending."""
        if self._state != _READY:
            return
        self._lost_reason = reason or "connection lost"
        if self.reconnect and not self._closed:
            self._begin_reconnect()
        else:
            self._fail_all(f"{self.path}: the connection to the target was lost ({self._lost_reason})")

    def _fail_all(self, why: str) -> None:
        """Fail every pending IO exactly once with DeviceGone and let the session go."""
        t = self.transport
        if t.gone:
            return
        t.gone = True
        self._state = _GONE
        reactor = self.reactor
        ep = self._ep
        pending = [io for io in ep.inflight.values()]
        ep.inflight.clear()
        if not ep.closed:
            reactor.close_endpoint(ep)  # unregisters, then _drop_connection via _Endpoint.close
        else:
            self._drop_connection()
        self._tick_ep.timer.disarm()
        for io in pending:
            reactor.abandoned.pop(io._pack_id, None)
            if not io.returned:
                io.hdr = Header(0, 0, 0, _DID_NO_CONNECT, 0, io.length, 0, 1, b"")
                reactor.fail(io, DeviceGone(why, io=io, command=io.command, host_status=_DID_NO_CONNECT))
        while t.queue:
            io = t.queue.popleft()
            io.hdr = Header(0, 0, 0, _DID_NO_CONNECT, 0, io.length, 0, 1, b"")
            reactor.fail(io, DeviceGone(why, io=io, command=io.command, host_status=_DID_NO_CONNECT))

    def _begin_reconnect(self) -> None:
        self._state = _RECONNECTING
        self.reconnects += 1
        ep = self._ep
        resend = [io for io in ep.inflight.values() if not io.returned and not io._abandoned]
        ep.inflight.clear()
        self.transport.queue.extendleft(reversed(resend))
        self.reactor.unregister(ep)
        ep.fd = -1
        self._drop_connection()
        now = time.monotonic()
        self._give_up_at = now + self.reconnect
        self._retry_at = now
        if not self._tick_ep.timer.armed:
            self._tick_ep.timer.arm(_TICK_MS)
        self._try_connect()

    def _try_connect(self) -> None:
        """Start one connection attempt (lock held); its steps continue in _reconnect_progress."""
        self._retry_at = time.monotonic() + _RETRY_EVERY
        opts = self.options
        conn = _b.Connection(opts.initiator_name)
        try:
            conn.configure(target=self.url.target, discovery=False, lun=self.url.lun or 0,
                           header_digest=opts.header_digest, user=opts.user, password=opts.password,
                           target_user=opts.target_user, target_password=opts.target_password, alias=opts.alias)
        except ValueError:
            conn.close()
            return
        if conn.start("connect", self.url.portal) != 0:
            conn.close()
            return
        self._rstep = "connect"
        self._attempt_deadline = time.monotonic() + min(opts.login_timeout, 10.0)
        self._attach(conn)

    def _reconnect_failed(self) -> None:
        ep = self._ep
        self.reactor.unregister(ep)
        ep.fd = -1
        self._drop_connection()

    def _reconnect_progress(self, events: int) -> int:
        """One step of a re-login: connect, login, clear unit attentions, resend."""
        conn = self._conn
        ptr = conn.ptr
        rc = _b.lib.sgpy_iscsi_service(ptr, events)
        if self._rstep == "ua":
            n, ints = conn.take()
            conn.taken()
            if rc < 0 or ptr.lost:
                self._reconnect_failed()
                return 0
            if n:
                status = ints[1]
                if status == _CHECK_CONDITION and self._ua_left > 0:
                    self._ua_left -= 1
                    self._send_tur()
                else:
                    self._resume()
                    return 0
            self._watch()
            return 0
        done, status, _reason = conn.step_result()
        if rc < 0 and not done:
            self._reconnect_failed()
            return 0
        if done:
            if status != 0:
                self._reconnect_failed()
                return 0
            if self._rstep == "connect":
                self._rstep = "login"
                if conn.start("login") != 0:
                    self._reconnect_failed()
                    return 0
            elif self._rstep == "login":
                self._rstep = "ua"
                self._ua_left = _UA_TRIES
                self._send_tur()
        self._watch()
        return 0

    def _send_tur(self) -> None:
        conn = self._conn
        if conn.submit(0, b"\x00" * 6, 0, None, 0) != 0:  # TEST UNIT READY (00h, SPC-5): a 6-byte CDB of zeros
            self._reconnect_failed()
            return
        _b.lib.sgpy_iscsi_service(conn.ptr, _b.POLLOUT)

    def _resume(self) -> None:
        self._state = _READY
        self._rstep = ""
        self._expire_queued(time.monotonic())
        self._pump()
        self._watch()

    def _expire_queued(self, now: float) -> None:
        """While reconnecting: fail resent commands whose timeout has passed."""
        keep = []
        q = self.transport.queue
        for io in q:
            if io._submitted_at and now - io._submitted_at >= io.timeout / 1000.0:
                self._time_out(0, io, now)
            else:
                keep.append(io)
        if len(keep) != len(q):
            q.clear()
            q.extend(keep)

    def _give_up(self, why: str) -> None:
        self._state = _READY  # _fail_all runs from the READY state's bookkeeping
        self._fail_all(f"{self.path}: the connection to the target was lost ({self._lost_reason}) and "
                       f"{why}")

    # -- closing -----------------------------------------------------------------

    @_interrupt.entry
    def close(self, timeout: Optional[float] = None) -> None:
        """Drain in-flight commands (see :meth:`sgpy.channel.Channel.close`), log out, close.  Idempotent."""
        if self._closed:
            return
        try:
            super().close(timeout)
        finally:
            reactor = self.reactor
            with reactor.lock:
                if self._conn is not None:
                    # Reconnecting: the socket is not among the transport's endpoints any more.
                    if not self._ep.closed:
                        reactor.close_endpoint(self._ep)
                    else:
                        self._drop_connection()
                tick = getattr(self, "_tick_ep", None)
                if tick is not None:
                    reactor.close_endpoint(tick)
                self._state = _CLOSED
