"""What a user's type checker sees of sgpy: mypy on a small user program.

tests/unit/data/typing/user_program.py marks each ``reveal_type`` line with
the type mypy must reveal (``# T: ...``, a prefix) and each line mypy must
reject with ``# E: ...`` (a fragment of the message).  mypy runs from a
directory outside the source tree, so it finds sgpy as a user would: the
installed package (``py.typed``).
"""

import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
PROGRAM = os.path.join(HERE, "data", "typing", "user_program.py")
ROOT = os.path.dirname(os.path.dirname(HERE))

pytest.importorskip("mypy")


def expectations():
    out = {}
    with open(PROGRAM, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.search(r"# ([TE]): (.*)$", line)
            if m:
                out[n] = (m.group(1), m.group(2).strip())
    return out


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory):
    work = tmp_path_factory.mktemp("typing")
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--hide-error-context",
                           "--no-error-summary", "--show-error-codes", PROGRAM],
                          cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = {}
    for row in proc.stdout.splitlines():
        m = re.match(r".*user_program\.py:(\d+): (note|error): (.*)$", row)
        if m:
            lines.setdefault(int(m.group(1)), []).append((m.group(2), m.group(3)))
        elif row.strip():
            lines.setdefault(0, []).append(("other", row))
    return lines


def test_mypy_finds_the_installed_package(mypy_output):
    assert 0 not in mypy_output, mypy_output.get(0)
    for rows in mypy_output.values():
        for kind, text in rows:
            assert "Cannot find implementation or library stub" not in text


@pytest.mark.parametrize("line", sorted(expectations()))
def test_what_mypy_says_of_each_marked_line(mypy_output, line):
    kind, want = expectations()[line]
    said = mypy_output.get(line, [])
    if kind == "T":
        revealed = [text for k, text in said if text.startswith("Revealed type is")]
        assert revealed, f"line {line}: no reveal_type output: {said}"
        got = re.sub(r'^Revealed type is "(.*)"$', r"\1", revealed[0])
        assert _normal(got).startswith(_normal(want)), f"line {line}: mypy revealed {got!r}, want {want!r}"
    else:
        errors = [text for k, text in said if k == "error"]
        assert any(want in e for e in errors), f"line {line}: want an error with {want!r}, mypy said {said}"


def test_no_unmarked_line_is_an_error(mypy_output):
    marked = expectations()
    stray = {n: rows for n, rows in mypy_output.items()
             if n and n not in marked and any(k == "error" for k, _ in rows)}
    assert not stray


def _normal(t):
    """mypy prints unions as ``A | B`` or ``Union[A, B]`` and builtins with or
    without their module, depending on its version: compare one form."""
    t = t.replace("builtins.", "")
    m = re.fullmatch(r"Union\[(.*)\]", t)
    if m:
        t = " | ".join(p.strip() for p in m.group(1).split(","))
    return t


def test_the_generated_command_types_are_current():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_command_types.py"), "--check"],
                          stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_parsed_answer_has_its_type():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import gen_command_types
    finally:
        sys.path.pop(0)
    from sgpy import results

    assert set(gen_command_types.RESULT_TYPES) == set(results._PARSERS)
