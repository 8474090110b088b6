"""iSCSI discovery: the targets a portal offers, and the LUNs behind each (``sgpy discover``).

:func:`discover` does what ``iscsiadm -m discovery -t st`` and libiscsi's
``iscsi-ls`` do:

1. a *discovery session* at the portal (RFC 7143 4.3, ``SessionType=Discovery``)
   asks ``SendTargets=All`` (RFC 7143 appendix C): the answer names every
   target (``TargetName``) with the portals it is reached at
   (``TargetAddress=host[:port][,portal-group-tag]``);
2. unless ``luns=False``, a normal session to each target asks LUN 0 for
   REPORT LUNS, then each LUN for INQUIRY (peripheral device type, vendor,
   product); every LUN gets its ``iscsi://HOST:PORT/IQN/LUN`` URL, the form
   :class:`~sgpy.iscsi.IscsiUrl` and ``Channel.from_url`` take, with the host
   and port that were asked (an address the target reports for itself need
   not be reachable from here).

A portal is ``HOST[:PORT]`` (``192.0.2.10``, ``target.example:3261``,
``[fe80::1]:3260``) or ``iscsi://[user[%password]@]HOST[:PORT]``; the port
defaults to 3260.  Synchronous: no reactor and no thread; one TCP connection
at a time, each closed (after a logout) before the next is opened.

Failures at the portal are exceptions of :mod:`sgpy.iscsi`, each naming the
portal: :class:`~sgpy.iscsi.IscsiUrlError` (a portal that does not parse),
:class:`~sgpy.iscsi.IscsiConnectionRefused` (nothing listens),
:class:`~sgpy.iscsi.IscsiConnectError` (no route, unknown host name, no
answer within ``timeout``), :class:`NotAnIscsiPortal` (something listens but
does not speak iSCSI), :class:`~sgpy.iscsi.AuthenticationFailed` /
:class:`~sgpy.iscsi.AuthorizationFailed` / :class:`~sgpy.iscsi.LoginFailed`
(the discovery login was refused).  A target whose own login fails is still
listed, with ``error`` saying why and no LUNs.
"""

from __future__ import annotations

import errno as _errno
import re
import time
from typing import Any, List, Optional, Tuple

import attr

from sgpy import _iscsi_binding as _b
from sgpy.constants import PeripheralDeviceType, ScsiStatus, SenseKey
from sgpy.iscsi import (
    DEFAULT_PORT,
    AuthenticationFailed,
    AuthorizationFailed,
    IscsiConnectError,
    IscsiConnectionRefused,
    IscsiError,
    IscsiUrl,
    IscsiUrlError,
    LoginFailed,
    LoginOptions,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Portal",
    "Lun",
    "Target",
    "NotAnIscsiPortal",
    "parse_portal",
    "send_targets",
    "discover",
]

#: Seconds each session (the discovery session, then each target's) may take, unless ``timeout=`` says otherwise.
DEFAULT_TIMEOUT = 15.0

_PORTAL_FORM = "HOST[:PORT] (192.0.2.10, target.example:3260, [fe80::1]:3260) or iscsi://HOST[:PORT]"
_HOST_PORT_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?))"
                           r"(?::(?P<port>[0-9]+))?$")
# RFC 7143 13.8: TargetAddress=domainname[:port][,portal-group-tag]; an IPv6 address in brackets.
_ADDRESS_RE = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:,\[\]]*))(?::(?P<port>[0-9]+))?(?:,(?P<tpgt>[0-9]+))?$")
# RFC 7143 11.13.5: the Status-Class and Status-Detail of a refused login, as libiscsi reports them.
_LOGIN_STATUS_RE = re.compile(r"Status:\s*(.*?)\((\d+)\)")
_LOGIN_AUTHENTICATION = 0x0201
_LOGIN_AUTHORIZATION = 0x0202
_UNIT_ATTENTION_TRIES = 5
_LOGOUT_SECONDS = 1.0


class NotAnIscsiPortal(IscsiConnectError):
    """Something accepts TCP connections at the portal but does not speak iSCSI.

    It closed the connection, or sent bytes that are no iSCSI PDU, in answer
    to the login request, without the Login Response every iSCSI target
    sends (even one that refuses the login).  ``errno`` is ``EPROTO``; an
    :class:`~sgpy.iscsi.IscsiConnectError`, so also a ``ConnectionError``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_errno.EPROTO, message)


# -- values --------------------------------------------------------------------------------


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
        """A ``TargetAddress`` value: ``host[:port][,tpgt]`` (RFC 7143 13.8); the text itself as host if it is not one."""
        m = _ADDRESS_RE.match(text)
        if m is None or not (m.group("v6") or m.group("host")):
            return cls(host=text)
        port = int(m.group("port")) if m.group("port") else DEFAULT_PORT
        tpgt = int(m.group("tpgt")) if m.group("tpgt") else None
        return cls(host=m.group("v6") or m.group("host"), port=port, tpgt=tpgt)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Lun:
    """One logical unit of a target: its number, its URL, and what INQUIRY says of it.

    ``device_type`` is the peripheral device type code (00h a disk, 0Ch a
    storage array controller...), None when INQUIRY failed; ``vendor`` and
    ``product`` are then empty.
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
    """One target of a SendTargets answer: its iSCSI ``name``, its ``portals``, and its ``luns``.

    ``luns`` is None when LUNs were not asked for (``luns=False``) or the
    target could not be asked (``error`` then says why: CHAP required, this
    initiator not allowed...).
    """

    name: str
    portals: Tuple[Portal, ...] = ()
    luns: Optional[Tuple[Lun, ...]] = None
    error: Optional[str] = None

    @property
    def urls(self) -> Tuple[str, ...]:
        """The ``iscsi://`` URL of each LUN (empty when there are no LUNs)."""
        return tuple(lun.url for lun in self.luns or ())


# -- the portal -----------------------------------------------------------------------------


def _portal_url(portal: str) -> IscsiUrl:
    """The portal as a URL without target (credentials kept); IscsiUrlError shows the form."""
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
    """``HOST[:PORT]`` or ``iscsi://HOST[:PORT]`` as a :class:`Portal`; :class:`~sgpy.iscsi.IscsiUrlError` if it is neither."""
    url = _portal_url(portal)
    return Portal(host=url.host, port=url.port)


# -- sessions -------------------------------------------------------------------------------


def _where(url: IscsiUrl) -> str:
    return f"{url.target} at {url.portal}" if url.target else url.portal


def _connect_failed(url: IscsiUrl, reason: str) -> IscsiConnectError:
    m = re.search(r"\((\d+)\)", reason)
    err = int(m.group(1)) if m else 0
    if err == _errno.ECONNREFUSED:
        return IscsiConnectionRefused(err, f"cannot connect to {url.portal}: connection refused (nothing listens "
                                           "there: is the host or the port wrong, or the target not running?)")
    if "resolv" in reason.lower():
        return IscsiConnectError(_errno.EHOSTUNREACH,
                                 f"cannot connect to {url.portal}: the host name {url.host!r} does not resolve")
    return IscsiConnectError(err, f"cannot connect to {url.portal}: {reason or 'the connection failed'}")


def _login_refused(url: IscsiUrl, reason: str, opts: LoginOptions) -> LoginFailed:
    m = _LOGIN_STATUS_RE.search(reason)
    status = int(m.group(2)) if m else None
    where = _where(url)
    if status == _LOGIN_AUTHENTICATION or (status is None and "CHAP" in reason):
        hint = ("CHAP is required: give a user and a password" if opts.user is None
                else f"check the CHAP user {opts.user!r} and its secret")
        return AuthenticationFailed(f"{where}: authentication failed ({reason}); {hint}", status=status,
                                    reason=reason)
    if status == _LOGIN_AUTHORIZATION:
        return AuthorizationFailed(f"{where}: initiator {opts.initiator_name!r} is not allowed to log in "
                                   "(login status 0202h)", status=status, reason=reason)
    detail = f"login status {status:04X}h: {m.group(1)}" if m and status is not None else reason or "no reason given"
    return LoginFailed(f"{where}: login refused ({detail})", status=status, reason=reason)


def _step(conn: Any, url: IscsiUrl, opts: LoginOptions, step: str, deadline: float, timeout: float) -> None:
    """Run one of connect/login/discovery to its end; raise what a person can act on."""
    if conn.start(step, url.portal) != 0:
        reason = conn.error()
        if step == "connect":
            raise _connect_failed(url, reason)
        raise LoginFailed(f"{_where(url)}: cannot start the {step}: {reason}", reason=reason)
    conn.run(lambda: conn.step_result()[0], deadline)
    done, status, reason = conn.step_result()
    if done and status == 0:
        return
    reason = reason or conn.error()
    if step == "connect":
        if not done and not conn.lost:
            raise IscsiConnectError(_errno.ETIMEDOUT, f"cannot connect to {url.portal}: no answer within "
                                                      f"{timeout:g} s")
        raise _connect_failed(url, reason)
    if not done and conn.lost:
        # libiscsi gave up on the socket before any Login Response (or text
        # response) came: the peer closed it, or sent bytes that are no PDU.
        if step == "login":
            raise NotAnIscsiPortal(f"{url.portal} is not an iSCSI target: it closed the connection (or sent "
                                   "something that is not iSCSI) instead of answering the login")
        raise IscsiConnectError(_errno.ECONNRESET, f"{_where(url)}: the connection was lost during the {step}")
    if not done:
        what = "Login Response" if step == "login" else "answer to SendTargets"
        hint = " (is this an iSCSI target's port?)" if step == "login" else ""
        raise IscsiConnectError(_errno.ETIMEDOUT, f"{_where(url)}: connected, but no {what} within {timeout:g} s"
                                                  f"{hint}")
    if step == "login":
        raise _login_refused(url, reason, opts)
    raise LoginFailed(f"{_where(url)}: the {step} failed ({reason or 'no reason given'})", reason=reason)


def _session(url: IscsiUrl, opts: LoginOptions, *, discovery: bool, timeout: float) -> Any:
    """A logged-in connection (a discovery session, or a normal one to ``url.target``)."""
    deadline = time.monotonic() + timeout
    conn = _b.Connection(opts.initiator_name)
    try:
        try:
            conn.configure(target=None if discovery else url.target, discovery=discovery, lun=0,
                           header_digest=opts.header_digest, user=opts.user, password=opts.password,
                           target_user=opts.target_user, target_password=opts.target_password, alias=opts.alias)
        except ValueError as exc:
            raise LoginFailed(f"{_where(url)}: {exc}") from None
        _step(conn, url, opts, "connect", deadline, timeout)
        _step(conn, url, opts, "login", deadline, timeout)
        return conn
    except BaseException:
        conn.close()
        raise


def _close(conn: Any) -> None:
    """Log out (bounded, best effort) and release the connection."""
    try:
        if conn.logged_in() and conn.start("logout") == 0:
            conn.run(lambda: conn.step_result()[0], time.monotonic() + _LOGOUT_SECONDS)
    finally:
        conn.close()


def _options(url: IscsiUrl, options: Any, timeout: float, caller: str) -> LoginOptions:
    options = dict(options)
    options.setdefault("login_timeout", timeout)
    opts = LoginOptions.merge(url, options)
    if options:
        raise TypeError(f"{caller}() got unexpected keyword(s) {sorted(options)}")
    return opts


def _targets(conn: Any) -> Tuple[Target, ...]:
    return tuple(Target(name=name, portals=tuple(Portal.from_address(p) for p in portals))
                 for name, portals in conn.discovery_targets())


def _send_targets(url: IscsiUrl, opts: LoginOptions, timeout: float) -> Tuple[Target, ...]:
    conn = _session(url, opts, discovery=True, timeout=timeout)
    try:
        _step(conn, url, opts, "discovery", time.monotonic() + timeout, timeout)
        return _targets(conn)
    finally:
        _close(conn)


def send_targets(portal: str, *, timeout: float = DEFAULT_TIMEOUT, **login: Any) -> Tuple[Target, ...]:
    """The targets ``portal`` offers (``SendTargets=All`` in a discovery session), without their LUNs.

    ``login``: the options of :class:`~sgpy.iscsi.LoginOptions`
    (``initiator_name``, CHAP with ``user``/``password`` and
    ``target_user``/``target_password``, ``header_digest``, ``alias``).
    ``timeout`` bounds the whole session, in seconds.  Raises as the module
    says.
    """
    url = _portal_url(portal)
    return _send_targets(url, _options(url, login, timeout, "send_targets"), timeout)


# -- LUNs ------------------------------------------------------------------------------------


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
        found.append(Lun(number, lun_url, int(inq.peripheral_device_type), inq.vendor, inq.product))
    return tuple(found)


def discover(portal: str, *, luns: bool = True, timeout: float = DEFAULT_TIMEOUT,
             **login: Any) -> Tuple[Target, ...]:
    """The targets ``portal`` offers and, unless ``luns=False``, the LUNs of each (see the module).

    ``portal``: ``HOST[:PORT]`` or ``iscsi://[user[%password]@]HOST[:PORT]``.
    ``login``: the options of :class:`~sgpy.iscsi.LoginOptions`; they apply
    to the discovery session and to every target's.  ``timeout`` bounds each
    session, in seconds.  The targets come in the order of the portal's
    answer, each target's LUNs in the order of its REPORT LUNS.
    """
    url = _portal_url(portal)
    opts = _options(url, login, timeout, "discover")
    found = _send_targets(url, opts, timeout)
    if not luns:
        return found
    out = []
    for target in found:
        # The LUNs' URLs carry no credentials (they are printed): the options hold them.
        turl = IscsiUrl(host=url.host, port=url.port, target=target.name)
        try:
            conn = _session(turl, opts, discovery=False, timeout=timeout)
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

