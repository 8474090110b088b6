"""The command line takes iSCSI URLs wherever it takes a device (tgtd on loopback)."""

import json

from sgpy import cli


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_inq_and_readcap_over_iscsi(tgtd, new_target, capsys):
    url = tgtd.url(new_target())
    rc, out, err = run(["inq", url, "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["data"]["vendor"]
    rc, out, err = run(["readcap", url, "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["block_size"] == 512


def test_unknown_target_is_no_such_device(tgtd, capsys):
    rc, out, err = run(["tur", f"iscsi://{tgtd.portal}/iqn.2026-11.invalid:nothing/1"], capsys)
    assert rc == cli.EXIT_NO_DEVICE
    assert "no target named" in err


def test_refused_connection_is_no_such_device(capsys):
    rc, out, err = run(["tur", "iscsi://127.0.0.1:1/iqn.2026-11.invalid:x/1"], capsys)
    assert rc == cli.EXIT_NO_DEVICE
    assert "connection refused" in err


def test_bench_over_iscsi_runs_jobs_on_the_sessions_ios(tgtd, new_target, capsys):
    url = tgtd.url(new_target())
    rc, out, err = run(["bench", url, "--seconds", "0.3", "--qd", "4", "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert (doc["engine"], doc["job_engine"], doc["errors"]) == ("job", "io", 0)
    assert doc["ios"] > 0 and doc["bytes"] == doc["ios"] * 4096
    rc, out, err = run(["bench", url, "--seconds", "0.2", "--rw", "write", "--channels", "2", "--qd", "4",
                        "--allow-data-loss", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["ios"] > 0


def test_health_over_iscsi_reports_what_tgtd_has(tgtd, new_target, capsys):
    """tgtd implements no LOG SENSE: every page is absent, the verdict UNKNOWN, the exit status 0; of the
    self-tests it runs the default one (SELFTEST bit) and refuses the self-test codes."""
    url = tgtd.url(new_target())
    rc, out, err = run(["health", url, "--json"], capsys)
    doc = json.loads(out)
    assert rc == doc["exit_status"] == 0, err
    assert (doc["verdict"], doc["log_sense_supported"], doc["supported_pages"], doc["errors"]) == \
        ("UNKNOWN", False, [], {})
    assert set(doc["absent"]) == set(doc["pages"]) and all(page is None for page in doc["pages"].values())
    assert doc["identity"]["vendor"] == "IET"
    rc, out, err = run(["health", url], capsys)
    assert rc == 0 and out.splitlines()[1].split() == ["health", "UNKNOWN"]
    assert "temperature               absent (no LOG SENSE)" in out
    rc, out, err = run(["health", url, "--self-test", "default"], capsys)
    assert rc == 0 and out.endswith(": the default self-test passed\n"), err
    rc, out, err = run(["health", url, "--self-test", "short", "--json"], capsys)
    assert rc == cli.EXIT_DEVICE_ERROR and "Invalid field in CDB" in err
    assert json.loads(out)["error"]["command"] == "SendDiagnostic"
