"""The documentation's code blocks: each is run somewhere, or says why not.

``tests/docs/docblocks.py`` finds every code block of ``docs/*.rst`` and
``README.rst``.  This file checks that each one is either run (here, for
the blocks that need no device; in the sandbox, against tgtd or by booting
the sandbox for the others) or marked in the source with the reason it is
not, and runs the host blocks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
pytest.importorskip("docutils")

import docblocks  # noqa: E402

HOST = docblocks.by_page("host")


def test_every_block_runs_somewhere_or_says_why_not() -> None:
    blocks = docblocks.all_blocks()
    assert len(blocks) > 50
    assert docblocks.unmarked_problems(blocks) == []
    for block in blocks:
        assert block.runs or block.not_run, block
        if block.runs:
            assert block.place in docblocks.PLACES, block


def test_the_runners_cover_every_runnable_block() -> None:
    """The four runners' pages hold every runnable block exactly once."""
    covered: List[docblocks.Block] = []
    for place in docblocks.PLACES:
        for blocks in docblocks.by_page(place).values():
            covered.extend(blocks)
    runnable = [b for b in docblocks.all_blocks() if b.runs]
    assert sorted(b.where for b in covered) == sorted(b.where for b in runnable)


def test_markers_are_read(tmp_path: Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        "Title\n=====\n\n.. run-all: device\n\n"
        "::\n\n    >>> 1 + 1\n    2\n\n"
        ".. not-run: an example of a transcript\n\nText::\n\n    $ true\n\n"
        ".. run: iscsi output-varies\n   x = 1\n\n::\n\n    $ echo $x\n\n"
        ".. code-block:: text\n\n   a diagram\n\n"
        ".. run: nowhere\n\n::\n\n    pass\n"
    )
    blocks = docblocks.blocks_of(page)
    assert [(b.place, b.kind, b.not_run) for b in blocks] == [
        ("device", "doctest", None),
        (None, "transcript", "an example of a transcript"),
        ("iscsi", "transcript", None),
        (None, "python", "a text block"),
        ("nowhere", "python", None),
    ]
    assert blocks[2].flags == ("output-varies",) and blocks[2].setup == "x = 1"
    assert [b.line for b in blocks] == [8, 15, 22, 26, 32]
    assert docblocks.unmarked_problems(blocks) == [f"{blocks[4].page}:32: unknown place 'nowhere' "
                                                   "(one of host, device, iscsi, sandbox)"]


def test_a_doctest_with_other_output_fails(tmp_path: Path) -> None:
    block = docblocks.Block("page.rst", 1, ">>> 1 + 1\n3\n", None)
    block.place = "host"
    ran, failures = docblocks.run_page([block])
    assert ran == 1 and "Expected:\n    3\nGot:\n    2" in failures[0]


def test_a_transcript_compares_output_and_keeps_the_status(tmp_path: Path) -> None:
    block = docblocks.Block("page.rst", 1, "$ echo hello\nhello\n$ false\n$ echo $?\n1\n", None)
    block.place = "host"
    assert docblocks.run_page([block], cwd=str(tmp_path)) == (1, [])
    block.text = "$ echo hello\nbye\n"
    assert "expected:\nbye" in docblocks.run_page([block], cwd=str(tmp_path))[1][0]


@pytest.mark.parametrize("page", sorted(HOST))
def test_host_examples_run(page: str, tmp_path: Path) -> None:
    ran, failures = docblocks.run_page(HOST[page], cwd=str(tmp_path))
    assert ran == len(HOST[page])
    assert not failures, "\n".join(failures)
