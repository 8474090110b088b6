"""The documentation's sandbox commands (``python -m sgpy.sandbox ...``), run on the host.

Every block marked ``.. run: sandbox`` runs here: each command boots the
sandbox itself.  See ``tests/docs/docblocks.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
pytest.importorskip("docutils")

import docblocks  # noqa: E402

SANDBOX = docblocks.by_page("sandbox")


@pytest.mark.parametrize("page", sorted(SANDBOX))
def test_sandbox_examples_run(page: str, tmp_path: Path) -> None:
    # The commands say "python": this interpreter, with sgpy importable
    # from the checkout wherever the test runs.
    root = str(docblocks.ROOT)
    env = docblocks.shell_env({"PYTHONPATH": root})
    ran, failures = docblocks.run_page(SANDBOX[page], cwd=str(tmp_path), env=env)
    assert ran == len(SANDBOX[page])
    assert not failures, "\n".join(failures)
