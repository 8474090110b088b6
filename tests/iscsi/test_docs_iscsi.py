"""The documentation's iSCSI examples, run against a private tgtd.

Every block marked ``.. run: iscsi`` (or on a page marked ``.. run-all:
iscsi``) runs here.  The pages show the portal ``192.0.2.10`` (an address
reserved for documentation, RFC 5737) and the target
``iqn.2003-01.org.example:disk1``: the test makes that target, with one
disk as LUN 1, on a tgtd of its own (discovery there lists that target
alone, whatever other tests added to the session's tgtd) and puts its portal (127.0.0.1 and a
free port) in place of the documentation's address, in the examples and
in their expected output alike; everything else is compared as written.
See ``tests/docs/docblocks.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
pytest.importorskip("docutils")

import docblocks  # noqa: E402

ISCSI = docblocks.by_page("iscsi")
DOC_PORTAL = "192.0.2.10"
DOC_TARGET = "iqn.2003-01.org.example:disk1"


@pytest.mark.parametrize("page", sorted(ISCSI))
def test_iscsi_examples_run(page: str, make_tgtd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tgtd = make_tgtd()
    tgtd.add_target(DOC_TARGET, luns=(1,), size_mb=16)
    substitutions = {f"{DOC_PORTAL}:3260": tgtd.portal, DOC_PORTAL: tgtd.portal}
    namespace: dict = {"__name__": "__docs__"}
    try:
        ran, failures = docblocks.run_page(ISCSI[page], namespace=namespace, cwd=str(tmp_path),
                                           substitutions=substitutions)
    finally:
        docblocks.close_channels(namespace)
    assert ran == len(ISCSI[page])
    assert not failures, "\n".join(failures)
