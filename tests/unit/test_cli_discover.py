"""``sgpy discover``, iSCSI discovery and logins where no iSCSI target is needed.

Portals that cannot be parsed, a port nobody listens on, and listeners on
loopback that are not iSCSI (one closes every connection, one answers like
a web server, one never answers): each gives its exit status and a message
naming the portal, for a discovery and for a channel's login alike.  The
discovery of real targets is in ``tests/iscsi/test_discovery.py``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from typing import Iterator

import pytest

from sgpy import Channel, discovery, iscsi
from sgpy.cli import EXIT_NO_DEVICE, EXIT_USAGE, main
from sgpy.discovery import Lun, NotAnIscsiPortal, Portal, Target, parse_portal

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def run(capsys: pytest.CaptureFixture[str], *argv: str):  # type: ignore[no-untyped-def]
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def extension() -> None:
    """Connecting needs sgpy's libiscsi extension (parsing does not)."""
    if not iscsi.available():
        message = "sgpy was built without its iSCSI extension (scripts/setup builds it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def listener(behaviour: str) -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that is no iSCSI target; yields ``127.0.0.1:PORT``.

    ``close``: closes each connection at once.  ``http``: reads the request
    and answers as a web server would.  ``silent``: keeps the connection and
    says nothing.  At most 8 connections, each held at most 5 seconds.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        served = 0
        while not stop.is_set() and served < 8:
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            served += 1
            with conn:
                if behaviour == "http":
                    conn.settimeout(2)
                    with contextlib.suppress(OSError):
                        conn.recv(4096)
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nBad Request" * 4)
                    stop.wait(0.5)
                elif behaviour == "silent":
                    stop.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(10)
        server.close()


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a socket that is bound but does not listen: connecting is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


# -- the portal's syntax -------------------------------------------------------------------------


@pytest.mark.parametrize("text, host, port", [
    ("192.0.2.10", "192.0.2.10", 3260),
    ("192.0.2.10:3261", "192.0.2.10", 3261),
    ("target.example", "target.example", 3260),
    ("  target-1.example:860 ", "target-1.example", 860),
    ("[fe80::1]", "fe80::1", 3260),
    ("[fe80::1]:3260", "fe80::1", 3260),
    ("iscsi://192.0.2.10", "192.0.2.10", 3260),
    ("ISCSI://192.0.2.10:3262/", "192.0.2.10", 3262),
    ("iscsi://user%secret@[::1]:3263", "::1", 3263),
])
def test_parse_portal(text: str, host: str, port: int) -> None:
    assert parse_portal(text) == Portal(host, port)
    assert str(parse_portal(text)) == (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


@pytest.mark.parametrize("text, says", [
    ("", "not a portal: ''"),
    ("192.0.2.10:", "not a portal"),
    ("192.0.2.10:abc", "not a portal"),
    ("192.0.2.10:0", "port 0 is out of range"),
    ("192.0.2.10:65536", "port 65536 is out of range"),
    ("fe80::1", "an IPv6 address goes in brackets"),
    ("[fe80::1", "not a portal"),
    ("192.0.2.10/iqn.2003-01.org.example:disk1", "a portal names no target"),
    ("iscsi://192.0.2.10/iqn.2003-01.org.example:disk1/1", "names a target"),
    ("iscsi://u%secret@192.0.2.10:x/", "not a portal: 'iscsi://u%***@192.0.2.10:x/'"),
    ("user@192.0.2.10", "not a portal"),
    ("two words", "not a portal"),
    ("-host", "not a portal"),
])
def test_a_bad_portal_says_the_form(text: str, says: str) -> None:
    with pytest.raises(iscsi.IscsiUrlError, match="not a portal|out of range|names a target") as info:
        parse_portal(text)
    assert says in str(info.value)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("text", ["192.0.2.10/iqn.x", "fe80::1", "h:99999", "iscsi://h/iqn.x/0"])
def test_cli_bad_portal_is_a_usage_error(capsys: pytest.CaptureFixture[str], text: str) -> None:
    code, out, err = run(capsys, "discover", text)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("sgpy discover: error: ") and len(err.splitlines()) == 1
    code, out, err = run(capsys, "discover", text, "--json")
    assert code == EXIT_USAGE
    assert json.loads(out)["error"]["type"] == "UsageError"


def test_cli_mutual_chap_needs_a_user(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "discover", "192.0.2.10", "--target-user", "t")
    assert code == EXIT_USAGE
    assert "--target-user (mutual CHAP) needs --user" in err


def test_cli_discover_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "discover")[0] == EXIT_USAGE
    code, out, err = run(capsys, "discover", "192.0.2.10", "--timeout", "0")
    assert code == EXIT_USAGE and "--timeout" in err


# -- what the target reports -------------------------------------------------------------------


@pytest.mark.parametrize("address, portal", [
    ("192.0.2.10:3260,1", Portal("192.0.2.10", 3260, 1)),
    ("192.0.2.10,12", Portal("192.0.2.10", 3260, 12)),
    ("192.0.2.10", Portal("192.0.2.10", 3260, None)),
    ("[2001:db8::1]:3261,2", Portal("2001:db8::1", 3261, 2)),
    ("target.example:3262", Portal("target.example", 3262, None)),
    ("not:a:portal", Portal("not:a:portal")),
])
def test_portal_from_target_address(address: str, portal: Portal) -> None:
    assert Portal.from_address(address) == portal


def test_lun_type_names_and_target_urls() -> None:
    disk = Lun(1, "iscsi://h:3260/iqn.x/1", 0, "IET", "VIRTUAL-DISK")
    assert disk.device_type_name == "disk"
    assert Lun(0, "u", 0x0C).device_type_name == "storage_array"
    assert Lun(2, "u", 0x1D).device_type_name == "type_1dh"
    assert Lun(3, "u").device_type_name is None
    assert Target("iqn.x", luns=(disk,)).urls == ("iscsi://h:3260/iqn.x/1",)
    assert Target("iqn.x").urls == () and Target("iqn.x").luns == ()
    t = Target("iqn.x", portals=("192.0.2.10:3261,2", "[2001:db8::1]"))
    assert t.iqn == "iqn.x" and t.addresses == (Portal("192.0.2.10", 3261, 2), Portal("2001:db8::1"))


def test_one_implementation_under_both_names() -> None:
    """sgpy.discovery names sgpy.iscsi's discovery; DiscoveredTarget/DiscoveredLun are Target/Lun."""
    for name in discovery.__all__:
        assert getattr(discovery, name) is getattr(iscsi, name)
    assert iscsi.DiscoveredTarget is Target and iscsi.DiscoveredLun is Lun


def test_not_an_iscsi_portal_is_a_connection_error() -> None:
    exc = NotAnIscsiPortal("127.0.0.1:80 is not an iSCSI target")
    assert isinstance(exc, iscsi.IscsiConnectError) and isinstance(exc, ConnectionError)
    assert exc.errno == errno.EPROTO and str(exc) == "127.0.0.1:80 is not an iSCSI target"


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        discovery.send_targets("192.0.2.10", colour="blue")


# -- portals where no target answers ------------------------------------------------------------


def test_refused_connection_exits_4_naming_the_portal(extension: None, capsys: pytest.CaptureFixture[str]) -> None:
    with closed_port() as portal:
        with pytest.raises(iscsi.IscsiConnectionRefused, match=f"cannot connect to {portal}: connection refused"):
            discovery.discover(portal)
        code, out, err = run(capsys, "discover", portal)
        assert code == EXIT_NO_DEVICE and out == ""
        assert err == (f"sgpy discover: cannot connect to {portal}: connection refused (nothing listens there: "
                       "is the host or the port wrong, or the target not running?)\n")
        code, out, err = run(capsys, "discover", portal, "--json")
        error = json.loads(out)["error"]
        assert (code, error["exit_code"], error["type"], error["device"]) == (4, 4, "NoSuchDevice", portal)
        assert "connection refused" in error["message"]


@pytest.mark.parametrize("behaviour", ["close", "http"])
def test_a_listener_that_is_not_iscsi_exits_4_at_once(extension: None, capsys: pytest.CaptureFixture[str],
                                                      behaviour: str) -> None:
    with listener(behaviour) as portal:
        start = time.monotonic()
        with pytest.raises(NotAnIscsiPortal, match=f"{portal} is not an iSCSI target"):
            discovery.send_targets(portal, timeout=10)
        code, out, err = run(capsys, "discover", portal, "--timeout", "10")
        assert time.monotonic() - start < 5  # known at once, not after the timeout
    assert code == EXIT_NO_DEVICE and out == ""
    assert err.startswith(f"sgpy discover: {portal} is not an iSCSI target: it closed the connection")


@pytest.mark.parametrize("behaviour", ["close", "http"])
def test_a_channel_login_to_a_listener_that_is_not_iscsi_fails_at_once(
        extension: None, capsys: pytest.CaptureFixture[str], behaviour: str) -> None:
    """Channel.from_url and ``sgpy inq iscsi://...`` say the peer is no iSCSI target, not that the login timed out."""
    with listener(behaviour) as portal:
        url = f"iscsi://{portal}/iqn.2003-01.org.example:disk1/0"
        start = time.monotonic()
        with pytest.raises(NotAnIscsiPortal, match=f"{portal} is not an iSCSI target: it closed the connection") \
                as info:
            Channel.from_url(url, login_timeout=10)
        assert info.value.errno == errno.EPROTO and "longer than" not in str(info.value)
        code, out, err = run(capsys, "inq", url)
        assert time.monotonic() - start < 5  # known at once, not after login_timeout
    assert code == EXIT_NO_DEVICE and out == ""
    assert f"{portal} is not an iSCSI target: it closed the connection" in err


def test_a_listener_that_never_answers_times_out(extension: None, capsys: pytest.CaptureFixture[str]) -> None:
    with listener("silent") as portal:
        start = time.monotonic()
        code, out, err = run(capsys, "discover", portal, "--timeout", "0.5")
        took = time.monotonic() - start
    assert code == EXIT_NO_DEVICE
    assert err == (f"sgpy discover: {portal}: connected, but no Login Response within 0.5 s "
                   "(is this an iSCSI target's port?)\n")
    assert 0.4 < took < 4


@pytest.mark.parametrize("error, code", [
    (iscsi.AuthenticationFailed("192.0.2.10:3260: authentication failed"), 5),
    (iscsi.AuthorizationFailed("192.0.2.10:3260: initiator 'x' is not allowed to log in"), 5),
    (iscsi.LoginFailed("192.0.2.10:3260: login refused"), 4),
    (iscsi.IscsiConnectError(errno.ETIMEDOUT, "cannot connect to 192.0.2.10:3260: no answer within 15 s"), 4),
])
def test_cli_exit_status_of_a_refused_discovery(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                error: Exception, code: int) -> None:
    """A discovery login the portal refuses (CHAP at discovery: tgtd has none to test with) is status 5."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(iscsi, "discover", refuse)
    got, out, err = run(capsys, "discover", "192.0.2.10", "--json")
    assert got == code
    assert err == f"sgpy discover: {error}\n"
    assert json.loads(out)["error"]["type"] == ("PermissionError" if code == 5 else "NoSuchDevice")


class FakeSession:
    """A logged-in session as ``sgpy.iscsi._luns`` uses it: ``run_command`` answers like a target.

    REPORT LUNS lists ``luns`` (cut to the allocation length); INQUIRY
    says disk, except at ``absent`` (peripheral qualifier 3: no LU there).
    The first command gets a UNIT ATTENTION, as on a new I_T nexus.
    """

    def __init__(self, luns, absent=()):  # type: ignore[no-untyped-def]
        self.luns = list(luns)
        self.absent = set(absent)
        self.sent = []  # type: ignore[var-annotated]
        self.attention = True

    def error(self) -> str:
        return ""

    def run_command(self, lun, cdb, direction, length, data=b"", *, deadline):  # type: ignore[no-untyped-def]
        self.sent.append((cdb[0], lun, length))
        if self.attention:
            self.attention = False
            return 2, b"", bytes([0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0x07, 0, 0, 0, 0])
        if cdb[0] == 0xA0:
            body = b"".join(n.to_bytes(2, "big") + bytes(6) for n in self.luns)
            return 0, (len(body).to_bytes(4, "big") + bytes(4) + body)[:length], b""
        assert cdb[0] == 0x12
        first = 0x7F if lun in self.absent else 0x00
        return 0, bytes([first, 0, 5, 2, 31, 0, 0, 0]) + b"FAKE    " + b"DISK".ljust(16) + b"0001", b""


def test_luns_after_a_unit_attention_and_past_the_first_answer() -> None:
    from sgpy.iscsi import IscsiUrl

    numbers = list(range(600))  # 600 LUNs take 4808 bytes: more than the first 4096-byte answer
    session = FakeSession(numbers, absent={7})
    url = IscsiUrl(host="192.0.2.10", target="iqn.2003-01.org.example:many")
    luns = iscsi._luns(session, url, time.monotonic() + 10)
    assert [lun.lun for lun in luns] == [n for n in numbers if n != 7]
    assert luns[1] == Lun(1, "iscsi://192.0.2.10:3260/iqn.2003-01.org.example:many/1", 0, "FAKE", "DISK")
    report_luns = [(lun, length) for op, lun, length in session.sent if op == 0xA0]
    assert report_luns == [(0, 4096), (0, 4096), (0, 8 + 600 * 8)]  # the attention, the cut answer, all
