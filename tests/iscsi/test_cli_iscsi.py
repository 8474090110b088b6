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


def _pattern(lba, count, tag):
    import struct

    return b"".join(struct.pack(">QQ", lba + i, tag) * 32 for i in range(count))


def test_copy_between_two_iscsi_luns_and_back_over_the_same_target(tgtd, new_target, capsys, tmp_path):
    a, b = tgtd.url(new_target()), tgtd.url(new_target())
    src = tmp_path / "pattern.bin"
    src.write_bytes(_pattern(10, 600, tag=7))
    rc, out, err = run(["write", a, "--lba", "10", "-i", str(src), "--allow-data-loss"], capsys)
    assert rc == 0, err
    rc, out, err = run(["copy", a, b, "--lba", "10", "--count", "600", "--dst-lba", "1000", "--chunk", "32k",
                        "--verify", "--allow-data-loss", "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert (doc["copied"], doc["verified"], doc["source"], doc["destination"]) == (600, True, a, b)
    back = tmp_path / "back.bin"
    rc, out, err = run(["read", b, "--lba", "1000", "--count", "600", "-o", str(back)], capsys)
    assert rc == 0, err
    assert back.read_bytes() == src.read_bytes()
    # the same URL twice is the same logical unit: an overlap is refused, a range apart is copied
    rc, out, err = run(["copy", b, b, "--lba", "1000", "--count", "600", "--dst-lba", "1300", "--allow-data-loss"],
                       capsys)
    assert rc == cli.EXIT_USAGE and "the ranges overlap" in err
    rc, out, err = run(["copy", b, b, "--lba", "1000", "--count", "600", "--dst-lba", "5000", "--allow-data-loss"],
                       capsys)
    assert rc == 0, err


def test_copy_refuses_devices_of_different_block_sizes(tgtd, new_target, capsys):
    a = tgtd.url(new_target())
    iqn = new_target(luns=())
    tid = tgtd.targets[iqn]
    path = f"{tgtd.workdir}/t{tid}-4k.img"
    with open(path, "wb") as f:
        f.truncate(8 << 20)
    tgtd.tgtadm("--mode", "logicalunit", "--op", "new", "--tid", str(tid), "--lun", "1", "--backing-store", path,
                "--blocksize", "4096")
    b = tgtd.url(iqn)
    rc, out, err = run(["readcap", b, "--json"], capsys)
    assert rc == 0 and json.loads(out)["block_size"] == 4096, err
    rc, out, err = run(["copy", a, b, "--count", "8", "--allow-data-loss"], capsys)
    assert rc == cli.EXIT_USAGE, err
    assert "the block sizes differ" in err and "512 bytes" in err and "4096" in err
