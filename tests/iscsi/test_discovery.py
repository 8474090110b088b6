"""``sgpy discover`` and :mod:`sgpy.discovery` against tgtd, checked against tgtd's and libiscsi's own lists.

A private tgtd (``make_tgtd``: its discovery lists these targets alone)
serves two targets with several LUNs, one with a gap in its numbers.  What
sgpy finds is compared with ``tgtadm --op show`` (the target's own
configuration) and with ``iscsi-ls -s`` (libiscsi's discovery, run side by
side), then every URL it prints is opened.  Targets that need CHAP or admit
one initiator only are listed with the reason (or, as tgtd does for an
initiator it does not admit, not at all), and in full with the right options.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Dict, Set, Tuple

import pytest

from sgpy import Channel, discovery
from sgpy.cli import EXIT_OK, main

from iscsi_target import IQN_PREFIX, Tgtd

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ALPHA_LUNS = (1, 2, 3)
BETA_LUNS = (1, 4)
CONTROLLER, DISK = 0x0C, 0x00


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Tgtd:
    """A private tgtd with targets alpha (LUNs 0-3) and beta (LUNs 0, 1, 4)."""
    from iscsi_target import missing

    why = missing()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    t = Tgtd(str(tmp_path_factory.mktemp("discovery-tgtd")))
    t.start()
    t.add_target("alpha", luns=ALPHA_LUNS, size_mb=8)
    t.add_target("beta", luns=BETA_LUNS, size_mb=8)
    yield t
    t.kill()


def tgtadm_targets(t: Tgtd) -> Dict[str, Dict[int, int]]:
    """``tgtadm --op show``: target name -> {LUN: peripheral device type}."""
    types = {"controller": CONTROLLER, "disk": DISK}
    out: Dict[str, Dict[int, int]] = {}
    current: Dict[int, int] = {}
    lun = None
    for line in t.tgtadm("--mode", "target", "--op", "show").splitlines():
        m = re.match(r"Target \d+: (\S+)", line)
        if m:
            current = out.setdefault(m.group(1), {})
            continue
        m = re.match(r"\s+LUN: (\d+)", line)
        if m:
            lun = int(m.group(1))
            continue
        m = re.match(r"\s+Type: (\S+)", line)
        if m and lun is not None:
            current[lun] = types[m.group(1)]
            lun = None
    return out


def iscsi_ls(portal: str) -> Tuple[Dict[str, Set[str]], Dict[str, Dict[int, int]]]:
    """libiscsi's ``iscsi-ls -s``: target -> portals, and target -> {LUN: device type}."""
    tool = shutil.which("iscsi-ls")
    if tool is None:
        message = "iscsi-ls is not installed (Debian package libiscsi-bin; scripts/setup installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run([tool, "-s", f"iscsi://{portal}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    types = {"STORAGE_ARRAY_CONTROLLER": CONTROLLER, "DIRECT_ACCESS": DISK}
    portals: Dict[str, Set[str]] = {}
    luns: Dict[str, Dict[int, int]] = {}
    target = ""
    for line in proc.stdout.splitlines():
        m = re.match(r"Target:(\S+) Portal:(\S+)", line)
        if m:
            target = m.group(1)
            portals.setdefault(target, set()).add(m.group(2))
            luns.setdefault(target, {})
            continue
        m = re.match(r"Lun:(\d+)\s+Type:(\S+)", line)
        if m:
            luns[target][int(m.group(1))] = types[m.group(2)]
    return portals, luns


def found_luns(targets: Tuple[discovery.Target, ...]) -> Dict[str, Dict[int, int]]:
    return {t.name: {lun.lun: lun.device_type for lun in t.luns} for t in targets}


def test_two_targets_and_their_luns_as_tgtd_and_iscsi_ls_list_them(portal: Tgtd) -> None:
    targets = discovery.discover(portal.portal)
    alpha, beta = f"{IQN_PREFIX}:alpha", f"{IQN_PREFIX}:beta"
    assert sorted(t.name for t in targets) == [alpha, beta]
    assert all(t.error is None for t in targets)
    expected = {alpha: {0: CONTROLLER, **{n: DISK for n in ALPHA_LUNS}},
                beta: {0: CONTROLLER, **{n: DISK for n in BETA_LUNS}}}
    # The target's own configuration...
    assert tgtadm_targets(portal) == expected
    assert found_luns(targets) == expected
    # ...and libiscsi's discovery side by side: the same targets, portals, LUNs and types.
    ls_portals, ls_luns = iscsi_ls(portal.portal)
    assert ls_luns == expected
    assert {t.name: {f"{p},{p.tpgt}" for p in t.addresses} for t in targets} == ls_portals
    for t in targets:
        assert [(p.host, p.port) for p in t.addresses] == [("127.0.0.1", portal.port)]
        for lun in t.luns:
            assert lun.url == portal.url(t.name, lun.lun)
            assert (lun.vendor, lun.product) == ("IET", "Controller" if lun.lun == 0 else "VIRTUAL-DISK")


def test_every_url_printed_opens(portal: Tgtd) -> None:
    for t in discovery.discover(portal.portal):
        for lun in t.luns:
            with Channel.from_url(lun.url) as ch:
                assert ch.cmd.Inquiry().result.peripheral_device_type == lun.device_type


def test_send_targets_lists_the_targets_without_logging_in(portal: Tgtd) -> None:
    targets = discovery.send_targets(f"iscsi://{portal.portal}")
    assert sorted(t.name for t in targets) == sorted(tgtadm_targets(portal))
    assert all(t.luns == () and t.error is None and t.urls == () for t in targets)


def run(capsys: pytest.CaptureFixture[str], *argv: str):  # type: ignore[no-untyped-def]
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_json_is_the_documented_schema(portal: Tgtd, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "discover", portal.portal, "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert list(doc) == ["portal", "targets"] and doc["portal"] == portal.portal
    expected = found_luns(discovery.discover(portal.portal))
    assert {t["name"]: {u["lun"]: u["type"] for u in t["luns"]} for t in doc["targets"]} == expected
    for t in doc["targets"]:
        assert list(t) == ["name", "portals", "luns", "error"] and t["error"] is None
        assert t["portals"] == [{"host": "127.0.0.1", "port": portal.port, "tpgt": 1}]
        for u in t["luns"]:
            assert list(u) == ["lun", "url", "type", "type_name", "vendor", "product"]
            assert u["url"] == portal.url(t["name"], u["lun"])
            assert u["type_name"] == ("storage_array" if u["lun"] == 0 else "disk")
    code, out, err = run(capsys, "discover", portal.portal, "--json", "--targets-only")
    assert code == EXIT_OK
    assert [t["luns"] for t in json.loads(out)["targets"]] == [None, None]


def test_cli_json_matches_the_schema_file(portal: Tgtd, capsys: pytest.CaptureFixture[str]) -> None:
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import cli_schema_check

    for options in ([], ["--targets-only"]):
        code, out, err = run(capsys, "discover", portal.portal, "--json", *options)
        assert code == EXIT_OK, err
        cli_schema_check.check(json.loads(out), "discover")


def test_cli_text_lists_each_target_and_lun_url(portal: Tgtd, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "discover", portal.portal)
    assert code == EXIT_OK and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{portal.portal}: 2 target(s)"
    assert f"  {IQN_PREFIX}:beta  (portal {portal.portal},1)" in lines
    urls = [line.split()[-1] for line in lines[1:] if line.startswith("    ") and line.split()[0].isdigit()]
    assert sorted(urls) == sorted(portal.url(f"{IQN_PREFIX}:{name}", n) for name, ns in
                                  (("alpha", (0, *ALPHA_LUNS)), ("beta", (0, *BETA_LUNS))) for n in ns)
    code, out, err = run(capsys, "discover", portal.portal, "--targets-only")
    assert code == EXIT_OK
    assert sorted(out.splitlines()[1:]) == [f"  {name}  (portal {portal.portal},1)"
                                            for name in sorted(tgtadm_targets(portal))]


def test_chap_and_initiator_names(make_tgtd, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    t = make_tgtd()
    locked = t.add_target("locked", luns=(1,), size_mb=8)
    t.add_chap(locked, "carol", "carol-secret-1")
    allowed = "iqn.2024-01.org.sgpy.test:allowed-host"
    picky = t.add_target("picky", luns=(1,), size_mb=8, initiators=[allowed])

    # Without the options: the CHAP target is listed with why its LUNs are missing (exit status 0);
    # tgtd does not even name the other to an initiator it does not admit (RFC 7143: SendTargets
    # reports the targets this initiator may reach).
    found = {x.name: x for x in discovery.discover(t.portal)}
    assert found[locked].luns == () and "authentication failed" in (found[locked].error or "")
    assert picky not in found
    code, out, err = run(capsys, "discover", t.portal)
    assert code == EXIT_OK
    assert "cannot list its LUNs:" in out and "the target wants CHAP" in out and picky not in out

    # CHAP from the environment, the initiator name from the command line.
    monkeypatch.setenv("SGPY_CHAP_PASSWORD", "carol-secret-1")
    code, out, err = run(capsys, "discover", t.portal, "--user", "carol", "--initiator-name", allowed, "--json")
    assert code == EXIT_OK, err
    doc = {x["name"]: x for x in json.loads(out)["targets"]}
    assert [u["lun"] for u in doc[locked]["luns"]] == [0, 1] and doc[locked]["error"] is None
    assert [u["lun"] for u in doc[picky]["luns"]] == [0, 1]
    assert "carol-secret-1" not in out  # no secret in the URLs

    # A wrong secret on the command line: listed with the reason, and no secret in it.
    monkeypatch.delenv("SGPY_CHAP_PASSWORD")
    code, out, err = run(capsys, "discover", t.portal, "--user", "carol", "--password", "wrong-secret-9")
    assert code == EXIT_OK and "check the CHAP user 'carol'" in out and "wrong-secret-9" not in out
    found = {x.name: x for x in discovery.discover(f"iscsi://carol%carol-secret-1@{t.portal}")}
    assert found[locked].urls == (t.url(locked, 0), t.url(locked, 1))
