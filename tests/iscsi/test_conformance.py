"""The conformance suite against tgtd (a file-backed LUN), with its known results (tests/data/conformance/)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from conformance_expect import check_against_known  # noqa: E402


def test_tgtd_file_backed_lun(tgtd, new_target):
    iqn = new_target()
    doc = check_against_known(tgtd.url(iqn, 1), "tgtd", allow_data_loss=True, allow_irreversible=True)
    assert doc["identity"]["vendor"].strip() == "IET"


def test_tgtd_read_only(tgtd, new_target):
    iqn = new_target()
    check_against_known(tgtd.url(iqn, 1), "tgtd-read-only")
