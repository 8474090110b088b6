"""iSCSI URLs and login options: parsing, printing, redaction, refusals (no target needed)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgpy import Channel
from sgpy.iscsi import (
    DEFAULT_PORT,
    IscsiUrl,
    IscsiUrlError,
    LoginOptions,
    parse_portal,
    default_initiator_name,
    parse_url,
)

IQN = "iqn.2003-01.org.example:disk1"


@pytest.mark.parametrize("url, fields", [
    (f"iscsi://10.0.0.1/{IQN}/0",
     dict(host="10.0.0.1", port=DEFAULT_PORT, target=IQN, lun=0, user=None, password=None)),
    (f"iscsi://10.0.0.1:3261/{IQN}/5",
     dict(host="10.0.0.1", port=3261, target=IQN, lun=5)),
    (f"iscsi://alice%s3cr3t@host.example.com/{IQN}/1",
     dict(host="host.example.com", user="alice", password="s3cr3t", lun=1)),
    (f"iscsi://alice@host/{IQN}/1",
     dict(user="alice", password=None)),
    (f"iscsi://alice%@host/{IQN}/1",
     dict(user="alice", password="")),
    (f"iscsi://[fe80::1]:3262/{IQN}/2",
     dict(host="fe80::1", port=3262, lun=2)),
    (f"iscsi://[::1]/{IQN}/3",
     dict(host="::1", port=DEFAULT_PORT)),
    (f"ISCSI://Host/{IQN}/16383",
     dict(host="Host", lun=16383)),
    (f"iscsi://h/{IQN}/1?target_user=tgt&target_password=pw&header_digest=CRC32C",
     dict(target_user="tgt", target_password="pw", header_digest="crc32c")),
    (f"iscsi://h/{IQN}/1?header_digest=none-crc32c",
     dict(header_digest="none,crc32c")),
    (f"iscsi://h/{IQN}/1/",
     dict(lun=1)),
])
def test_parse(url, fields):
    u = parse_url(url)
    for name, value in fields.items():
        assert getattr(u, name) == value, name


@pytest.mark.parametrize("url, message", [
    ("http://h/iqn.x/0", "not an iSCSI URL"),
    ("iscsi:/h/iqn.x/0", "not an iSCSI URL"),
    ("iscsi://h", "lacks the target IQN and the LUN"),
    ("iscsi://h/iqn.x", "lacks the LUN"),
    ("iscsi://h/iqn.x/", "lacks the LUN"),
    ("iscsi://h/iqn.x/one", "the LUN must be a decimal number"),
    ("iscsi://h/iqn.x/-1", "the LUN must be a decimal number"),
    ("iscsi://h/iqn.x/16384", "out of range"),
    ("iscsi://h:0/iqn.x/1", "port 0 is out of range"),
    ("iscsi://h:70000/iqn.x/1", "port 70000 is out of range"),
    ("iscsi://h/iqn.x/1?colour=blue", "unknown URL argument 'colour=blue'"),
    ("iscsi://h/iqn.x/1?header_digest=md5", "header_digest='md5'"),
    ("iscsi://h/iqn.x/1/2", "not an iSCSI URL"),
])
def test_refused_urls_say_what_is_wrong(url, message):
    with pytest.raises(IscsiUrlError, match=message) as info:
        parse_url(url)
    assert isinstance(info.value, ValueError)
    assert "iscsi://[user[%password]@]host[:port]/target-iqn/lun" in str(info.value) or "out of range" in \
        str(info.value) or "argument" in str(info.value) or "digest" in str(info.value)


@pytest.mark.parametrize("url, shown", [
    (f"iscsi://h/{IQN}/0", f"iscsi://h/{IQN}/0"),
    (f"iscsi://alice%s3cr3t@h/{IQN}/0", f"iscsi://alice%***@h/{IQN}/0"),
    (f"iscsi://alice@h/{IQN}/0", f"iscsi://alice@h/{IQN}/0"),
    (f"iscsi://h/{IQN}/0?target_user=t&target_password=pw", f"iscsi://h/{IQN}/0?target_user=t&target_password=***"),
])
def test_redacted_hides_secrets_and_keeps_the_rest_as_given(url, shown):
    u = parse_url(url)
    assert u.redacted() == shown
    assert "s3cr3t" not in repr(u) and "pw" not in repr(u).replace("port", "")


@pytest.mark.parametrize("portal, host, port", [
    ("127.0.0.1", "127.0.0.1", DEFAULT_PORT),
    ("127.0.0.1:3270", "127.0.0.1", 3270),
    ("iscsi://h:3271", "h", 3271),
    ("iscsi://h:3271/", "h", 3271),
    ("[::1]:3272", "::1", 3272),
])
def test_portals(portal, host, port):
    p = parse_portal(portal)
    assert (p.host, p.port, p.tpgt) == (host, port, None)
    assert str(p) == (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


iqn_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:", min_size=1, max_size=40)


@given(host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
       port=st.integers(1, 65535), target=iqn_chars, lun=st.integers(0, 16383),
       user=st.none() | st.text(alphabet="abcdefghij0123456789_-.", min_size=1, max_size=12),
       password=st.text(alphabet="abcdefghij0123456789_-.!*", max_size=16))
def test_str_round_trips(host, port, target, lun, user, password):
    u = IscsiUrl(host=host, port=port, target=target, lun=lun, user=user, password=password if user else None)
    again = parse_url(str(u))
    assert again == u


@pytest.mark.parametrize("options, message", [
    (dict(data_digest="crc32c"), "DataDigest=None only"),
    (dict(header_digest="sha1"), "header_digest='sha1'"),
    (dict(target_user="t", target_password="p"), "mutual CHAP .* needs one-way CHAP too"),
    (dict(initiator_name=""), "initiator_name may not be empty"),
    (dict(login_timeout=0), "login_timeout=0 is not a finite, positive number of seconds"),
])
def test_refused_login_options(options, message):
    with pytest.raises(ValueError, match=message):
        LoginOptions(**options)


@pytest.mark.parametrize("given_, expected", [
    (True, "crc32c"), (False, "none"), (None, "none"), ("CRC32C,None", "crc32c,none"), ("none", "none"),
])
def test_header_digest_spellings(given_, expected):
    assert LoginOptions(header_digest=given_).header_digest == expected


def test_keyword_options_override_the_url():
    u = parse_url(f"iscsi://alice%one@h/{IQN}/1?header_digest=crc32c")
    opts = LoginOptions.merge(u, {"password": "two", "initiator_name": "iqn.2024-01.org.example:me"})
    assert (opts.user, opts.password, opts.header_digest) == ("alice", "two", "crc32c")
    assert opts.initiator_name == "iqn.2024-01.org.example:me"
    assert "two" not in repr(opts)


def test_default_initiator_name_is_an_iqn():
    name = default_initiator_name()
    assert name.startswith("iqn.2024-01.org.sgpy:") and name == name.lower()


def test_channel_from_url_sends_paths_to_from_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        Channel.from_url(str(tmp_path / "no-such-device"))
    with pytest.raises(IscsiUrlError):
        Channel.from_url("iscsi://host-without-target")


def test_without_the_extension_opening_a_url_says_what_to_install(monkeypatch):
    from sgpy import _iscsi_binding

    monkeypatch.setattr(_iscsi_binding, "lib", None)
    monkeypatch.setattr(_iscsi_binding, "_IMPORT_ERROR", "No module named 'sgpy._iscsiffi'")
    with pytest.raises(ImportError, match="libiscsi-dev"):
        Channel.from_url(f"iscsi://127.0.0.1/{IQN}/1")
    from sgpy import iscsi

    assert iscsi.available() is False
