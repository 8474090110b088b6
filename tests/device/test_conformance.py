"""The conformance suite against scsi_debug, with its known results (tests/data/conformance/)."""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from conformance_expect import check_against_known, run_per_worker  # noqa: E402


def test_default_scsi_debug_read_only(sg_device):
    doc = check_against_known(sg_device, "scsi_debug-default-read-only")
    outcomes = {r["outcome"] for r in doc["results"]}
    assert "skipped-by-safety" in outcomes  # writing checks were not run
    assert doc["identity"]["product"].strip() == "scsi_debug"
    assert doc["identity"]["serial"]  # scsi_debug's Unit Serial Number page


#: GET LBA STATUS from LBA 2**64-1 takes this kernel's scsi_debug (Linux 6.1) down where it provisions
#: blocks or zones: its range check (check_device_access_params) computes lba + 1, which wraps to 0 and
#: passes, and then it looks the LBA up.  Thin-provisioned (lbpu=1), map_state() indexes its
#: provisioning bitmap with it and the guest hangs; zoned, the zone lookup indexes past its zone table
#: and the guest kernel oopses in resp_get_lba_status (docs/conformance.rst).  Those two sets leave the
#: check out; the default set records its failure (GOOD, describing the LBA the sum wrapped to).
_GET_LBA_STATUS_AT_2_64 = "test_get_lba_status_at_the_largest_lba_is_refused"


def test_default_scsi_debug_with_data_loss(sg_device):
    # --allow-irreversible as well: the SANITIZE checks then find out that scsi_debug lacks SANITIZE.
    check_against_known(sg_device, "scsi_debug-default", allow_data_loss=True, allow_irreversible=True)


@pytest.mark.scsi_debug(lbpu=1, lbpws=1, lbprz=1, num_tgts=1)
def test_thin_provisioned_scsi_debug(sg_device):
    check_against_known(sg_device, "scsi_debug-thin", allow_data_loss=True, allow_irreversible=True,
                        select=f"not {_GET_LBA_STATUS_AT_2_64}")


@pytest.mark.scsi_debug(sector_size=4096, num_tgts=1)
def test_4k_scsi_debug(sg_device):
    check_against_known(sg_device, "scsi_debug-4k", allow_data_loss=True, allow_irreversible=True)


def test_the_command_line_entry_and_its_exit_status(sg_device, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sgpy.conformance", sg_device, "--select", "inquiry",
                           "--junit", str(tmp_path / "j.xml")], stdout=subprocess.PIPE, text=True)
    assert "INQUIRY" in proc.stdout and "failures:" in proc.stdout
    assert proc.returncode == 1  # scsi_debug ignores PAGE CODE without EVPD: a "shall" fails
    assert (tmp_path / "j.xml").read_text().count("<testcase") >= 4


def test_a_missing_target_exits_4(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sgpy.conformance", str(tmp_path / "nothing")],
                          stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 4 and "does not exist" in proc.stderr


def test_the_suite_on_two_devices_with_one_xdist_worker_each(sg_devices, tmp_path):
    """Scale-out: pytest-xdist runs the whole suite once per target (--dist each), worker gwN on the
    N-th --sgpy-target."""
    pytest.importorskip("xdist")
    assert len(sg_devices) >= 2

    def run(targets):
        return run_per_worker(targets, "inquiry or read_capacity")

    single = run(sg_devices[:1])
    n = len(single)
    assert n >= 5
    both = run(sg_devices[:2])
    for worker in ("[gw0]", "[gw1]"):  # every check ran on each worker
        assert sum(line.startswith(worker) for line in both) == n, both
    # gw1 takes the second target: give it one that does not exist and only its checks error.
    bad = run([sg_devices[0], str(tmp_path / "no-such-device")])
    assert sum(line.startswith("[gw1]") and "ERROR" in line for line in bad) == n, bad
    assert not any(line.startswith("[gw0]") and "ERROR" in line for line in bad), bad


@pytest.mark.scsi_debug(dif=1, dix=0, num_tgts=1)
def test_protection_type_1_scsi_debug(sg_device):
    """T10 protection information, type 1 (scsi_debug dif=1): the suite reads and writes with RDPROTECT and
    WRPROTECT 0, so the device generates and strips the protection information itself (SBC-4 4.22)."""
    doc = check_against_known(sg_device, "scsi_debug-protection", allow_data_loss=True, allow_irreversible=True)
    assert doc["identity"]["product"].strip() == "scsi_debug"


@pytest.mark.scsi_debug(zbc="managed", zone_size_mb=4, zone_nr_conv=1, dev_size_mb=32, num_tgts=1)
def test_host_managed_zoned_scsi_debug(sg_device):
    """A host-managed zoned device (ZBC-2; scsi_debug zbc=managed): the ZBC checks run (REPORT ZONES, the
    write pointer, the zone condition state machine), and the checks that write anywhere on the medium
    are skipped as unsupported (a sequential zone takes writes only at its write pointer)."""
    # Three checks are left out because they crash this kernel's scsi_debug (Linux 6.1) when it is zoned:
    # check_device_access_params looks up the zones of the first and the last LBA of the range, and
    # for READ(10) of zero blocks at LBA 0 "the last" is LBA 0 - 1; for READ(16) and GET LBA STATUS at
    # LBA 2**64-1 its range check wraps (a recorded failure on the default set).  Each indexes past its
    # zone table and the guest kernel oopses (docs/conformance.rst).
    check_against_known(sg_device, "scsi_debug-zoned", allow_data_loss=True, allow_irreversible=True,
                        select="not test_read_16_at_the_largest_lba_is_refused"
                               " and not test_read_10_of_zero_blocks_transfers_nothing"
                               f" and not {_GET_LBA_STATUS_AT_2_64}")
