"""The conformance suite against tgtd (a file-backed LUN), with its known results (tests/data/conformance/)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from conformance_expect import check_against_known, run_per_worker  # noqa: E402


def test_tgtd_file_backed_lun(tgtd, new_target):
    iqn = new_target()
    doc = check_against_known(tgtd.url(iqn, 1), "tgtd", allow_data_loss=True, allow_irreversible=True)
    assert doc["identity"]["vendor"].strip() == "IET"


def test_tgtd_read_only(tgtd, new_target):
    iqn = new_target()
    check_against_known(tgtd.url(iqn, 1), "tgtd-read-only")


def test_conform_second_initiator_names_the_second_session(tgtd, new_target, capsys):
    # A target that admits sgpy's own name and one lab name only: the two-initiator checks run with
    # --second-initiator set to the lab name, and are skipped (the login refused) without it.
    import json

    from sgpy import iscsi
    from sgpy.cli import main

    lab = "iqn.2024-01.org.example:lab-initiator-b"
    iqn = new_target(initiators=[iscsi.default_initiator_name(), lab], allow_all=False)
    check = "test_pr_only_the_holder_reserves_and_releases"
    argv = ["conform", tgtd.url(iqn, 1), "--select", check, "--allow-data-loss", "--json"]

    def outcome(*extra):
        main(argv + list(extra))
        (result,) = json.loads(capsys.readouterr().out)["results"]
        return result

    ran = outcome("--second-initiator", lab)
    assert ran["outcome"] == "pass", ran
    refused = outcome()
    assert refused["outcome"].startswith("skipped") and iscsi.default_initiator_name() + ".second" in \
        refused["reason"], refused


def test_the_suite_on_two_iscsi_luns_with_one_xdist_worker_each(tgtd, new_target):
    """Scale-out over iSCSI: pytest-xdist runs the whole suite once per LUN URL (--dist each), worker gwN
    on the N-th --sgpy-target; a LUN that does not exist errors on its own worker only."""
    import pytest

    pytest.importorskip("xdist")
    iqn = new_target(luns=(1, 2))
    urls = [tgtd.url(iqn, 1), tgtd.url(iqn, 2)]
    select = "inquiry or read_capacity"
    n = len(run_per_worker(urls[:1], select))
    assert n >= 5
    both = run_per_worker(urls, select)
    for worker in ("[gw0]", "[gw1]"):
        assert sum(line.startswith(worker) for line in both) == n, both
        assert not any(line.startswith(worker) and "ERROR" in line for line in both), both
    bad = run_per_worker([urls[0], tgtd.url(iqn, 7)], select)
    assert sum(line.startswith("[gw1]") and "ERROR" in line for line in bad) == n, bad
    assert not any(line.startswith("[gw0]") and "ERROR" in line for line in bad), bad
