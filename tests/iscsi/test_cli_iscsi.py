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
    rc, out, err = run(["bench", url, "--count", "300", "--rw", "randrw", "--rwmixread", "70", "--qd", "4",
                        "--offset", "64k", "--size", "1m", "--allow-data-loss", "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ios"] == doc["read"]["ios"] + doc["write"]["ios"] == 300 and doc["write"]["ios"] > 0
    rc, out, err = run(["bench", url, "--seconds", "1", "--rate-iops", "100", "--json"], capsys)
    assert rc == 0, err
    assert 100 * 0.85 <= json.loads(out)["ios"] <= 100 * 1.15


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


def test_info_over_iscsi_shows_what_tgtd_answers(tgtd, new_target, capsys):
    """``sgpy info URL`` on a tgtd disk: identity, capacity and pages as the single verbs give them."""
    url = tgtd.url(new_target(size_mb=16))
    rc, out, err = run(["info", url, "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["device"] == url and doc["vendor"] == "IET" and doc["product"] == "VIRTUAL-DISK"
    assert doc["device_type_name"] == "disk" and doc["scsi_version"] == "SPC-3" and doc["transport"] == "iscsi"
    assert doc["capacity_bytes"] == 16 * 1024 * 1024 and doc["logical_block_size"] == 512
    rc, out2, _ = run(["readcap", url, "--json"], capsys)
    cap = json.loads(out2)
    assert (doc["blocks"], doc["physical_block_size"], doc["lbpme"], doc["protection_type"]) == \
        (cap["blocks"], cap["physical_block_size"], cap["lbpme"], cap["protection_type"])
    rc, out2, _ = run(["vpd", url, "--json"], capsys)
    assert doc["vpd_pages"] == sorted(json.loads(out2)["data"]["pages"])
    rc, out2, _ = run(["vpd", url, "di", "--json"], capsys)
    assert doc["wwn"] == json.loads(out2)["data"]["wwn"] and doc["wwn"].startswith("naa.")
    rc, out2, _ = run(["vpd", url, "sn", "--json"], capsys)
    assert doc["serial"] == json.loads(out2)["data"]["serial"].strip()
    assert doc["write_protect"] is False and doc["rotation_rate"] == 0 and doc["form_factor"] is None
    rc, out, err = run(["info", url], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{url}: IET VIRTUAL-DISK {doc['revision']}"
    rows = dict(line.strip().split("  ", 1) for line in lines[1:])
    rows = {k: v.strip() for k, v in rows.items()}
    assert rows["transport"] == "iscsi" and rows["write protect"] == "no"
    assert rows["capacity"] == "16777216 bytes (16.7MB, 16.0 MiB)"
    assert rows["rotation rate"] == rows["form factor"] == "not reported"


def test_info_over_iscsi_shows_what_a_controller_lacks_as_unknown(tgtd, new_target, capsys):
    """tgtd's LUN 0 is a controller (storage array): no READ CAPACITY, no MODE SENSE; those are unknown and
    the verb still succeeds."""
    url = tgtd.url(new_target(), lun=0)
    rc, out, err = run(["info", url, "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["device_type_name"] == "storage_array"
    for key in ("capacity_bytes", "blocks", "logical_block_size", "physical_block_size", "lbpme", "lbprz",
                "protection_type", "write_protect"):
        assert doc[key] is None, key
    rc, out, err = run(["info", url], capsys)
    assert rc == 0, err
    rows = {k: v.strip() for k, v in (line.strip().split("  ", 1) for line in out.splitlines()[1:])}
    for key in ("capacity", "logical block size", "physical block size", "protection", "write protect"):
        assert rows[key] == "unknown", key


def test_tur_count_over_iscsi(tgtd, new_target, capsys):
    url = tgtd.url(new_target())
    rc, out, err = run(["tur", url, "--count", "20", "--json"], capsys)
    doc = json.loads(out)
    # the new session's unit attentions were reported at login (IscsiChannel): every command is ready
    assert rc == 0 and doc["sent"] == doc["ready_count"] == 20 and doc["failures"] == [], err
    assert 0 < doc["min_ms"] <= doc["mean_ms"] <= doc["max_ms"]
    rc, out, err = run(["tur", url, "--count", "5"], capsys)
    assert rc == 0 and out.splitlines()[0] == f"{url}: 5 TEST UNIT READY: 5 ready, 0 not ready"


def test_opcodes_one_command_logs_all_and_zones_over_iscsi(tgtd, new_target, capsys):
    """``opcodes --opcode``, ``logs --all`` and ``zones`` take a URL too; what tgtd lacks (LOG SENSE,
    REPORT ZONES) is a device error, exit status 3, with the error object."""
    url = tgtd.url(new_target())
    rc, out, err = run(["opcodes", url, "--opcode", "0x28", "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["opcode"] == 0x28 and doc["supported"] is True and doc["support"] == "supported", err
    rc, out, err = run(["logs", url, "--all", "--json"], capsys)
    assert rc == cli.EXIT_DEVICE_ERROR and json.loads(out)["error"]["command"] == "LogSense"
    assert "Invalid command operation code" in err
    rc, out, err = run(["zones", url, "--json"], capsys)
    assert rc == cli.EXIT_DEVICE_ERROR and json.loads(out)["error"]["command"] == "ReportZones"
    assert "is not a zoned block device" in err
