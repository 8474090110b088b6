"""The documentation's device examples, run in the sandbox on its scsi_debug disks.

Every block marked ``.. run: device`` (or on a page marked ``.. run-all:
device``) runs here, page by page, in a namespace of its own per page: the
Python blocks and doctests as a reader types them, the shell transcripts
(``$ sgpy ...``) in bash with their output compared.  See
``tests/docs/docblocks.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
pytest.importorskip("docutils")

import docblocks  # noqa: E402

DEVICE = docblocks.by_page("device")


@pytest.mark.parametrize("page", sorted(DEVICE))
def test_device_examples_run(page: str, scsi_debug, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The pages show the sandbox's two disks: /dev/sg0 and /dev/sg1.
    assert scsi_debug.devices[:2] == ["/dev/sg0", "/dev/sg1"]
    namespace: dict = {"__name__": "__docs__"}
    try:
        ran, failures = docblocks.run_page(DEVICE[page], namespace=namespace, cwd=str(tmp_path))
    finally:
        docblocks.close_channels(namespace)
    assert ran == len(DEVICE[page])
    assert not failures, "\n".join(failures)
