"""Every code block of the documentation, found with docutils and run.

The documentation (``docs/*.rst`` and ``README.rst``) is parsed with
docutils; every literal block (``::``), ``code-block`` and doctest block is
one :class:`Block`.  Where it runs is said in the source by an rst comment
placed anywhere before it (it applies to the next block, and to none after)::

    .. run: device
    .. run: iscsi output-varies
    .. not-run: an install command: it changes the machine

``.. run-all: PLACE`` near the top of a page sets the place of the page's
blocks that have no comment of their own.  Places:

``host``
    no device (the default for an unmarked block);
``device``
    inside the sg sandbox, with the scsi_debug disks ``/dev/sg0`` and
    ``/dev/sg1`` (``tests/device/test_docs_examples.py``);
``iscsi``
    against a private tgtd (``tests/iscsi/test_docs_iscsi.py``);
``sandbox``
    shell commands that boot the sandbox themselves, run on the host
    (``tests/sandbox/test_docs_sandbox.py``).

Indented lines under a ``run:`` comment are set-up code for that block, run
before it in the same namespace and not shown in the documentation (Python
for Python blocks, shell for shell blocks).  A ``not-run:`` comment must say
why.  A ``code-block`` in ``text``, ``console`` or ``none`` is not code and
is not run.  Nothing else is skipped: :func:`unmarked_problems` fails the
unit tests when a block is neither runnable nor marked.

What a block is:

* a doctest (its first line starts with ``>>>``): its output must be the
  real output (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``);
* a shell transcript (lines starting with ``$``): each command runs in
  bash, in a temporary directory, and its output (stdout and stderr) must
  match the lines that follow it, unless ``output-varies`` is given, when
  each command must exit with status 0;
* shell commands (``run: PLACE shell``): each line runs and must exit 0;
* otherwise Python, executed; it must not raise.

The blocks of one page and one place share a namespace, in page order, as
a reader typing along would.
"""

from __future__ import annotations

import doctest
import functools
import io
import os
import re
import subprocess
import sys
import traceback
from contextlib import redirect_stdout
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PLACES = ("host", "device", "iscsi", "sandbox")
NOT_CODE = ("text", "console", "none")
FLAGS = ("shell", "output-varies")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class Block:
    """One code block: where it is, what it is, and where it runs."""

    def __init__(self, page: str, line: int, text: str, language: Optional[str]) -> None:
        self.page = page
        self.line = line
        self.text = text
        self.language = language
        self.place: Optional[str] = None
        self.flags: Tuple[str, ...] = ()
        self.setup = ""
        self.not_run: Optional[str] = None
        self.marker_error: Optional[str] = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """``doctest``, ``transcript``, ``shell`` or ``python``."""
        first = self.text.lstrip().splitlines()[0] if self.text.strip() else ""
        if first.startswith(">>>"):
            return "doctest"
        if first.startswith("$ "):
            return "transcript"
        if "shell" in self.flags or self.language in ("sh", "bash", "shell"):
            return "shell"
        return "python"

    @property
    def runs(self) -> bool:
        return self.not_run is None

    def __repr__(self) -> str:
        state = f"not run: {self.not_run}" if self.not_run else f"{self.place} {self.kind}"
        return f"<Block {self.where} ({state})>"


def pages() -> List[Path]:
    """Every page: docs/*.rst and README.rst."""
    return sorted(DOCS.glob("*.rst")) + [ROOT / "README.rst"]


def _page_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _parse(path: Path):  # type: ignore[no-untyped-def]
    import docutils.core

    # Sphinx's directives and roles are unknown to docutils: they become
    # system messages (dropped below), never code blocks.
    settings = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False, "raw_enabled": False}
    return docutils.core.publish_doctree(path.read_text(encoding="utf-8"), source_path=str(path),
                                         settings_overrides=settings)


def _inside_message(node) -> bool:  # type: ignore[no-untyped-def]
    from docutils import nodes

    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.system_message):
            return True
        parent = parent.parent
    return False


def _marker(text: str) -> Optional[Tuple[str, str, str]]:
    """``(name, argument, body)`` of a ``run:``/``run-all:``/``not-run:`` comment."""
    head, _, body = text.partition("\n")
    m = re.match(r"^(run|run-all|not-run):\s*(.*)$", head.strip())
    if not m:
        return None
    return m.group(1), m.group(2).strip(), body


def _source_lines(source: str, text: str, start: int) -> int:
    """The 1-based line where ``text``'s first line appears at or after line ``start``."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    lines = source.splitlines()
    for i in range(max(start - 1, 0), len(lines)):
        if first and lines[i].strip() == first:
            return i + 1
    for i in range(len(lines)):
        if first and lines[i].strip() == first:
            return i + 1
    return start


def blocks_of(path: Path) -> List[Block]:
    """The code blocks of one page, markers applied."""
    from docutils import nodes

    source = path.read_text(encoding="utf-8")
    page = _page_name(path)
    found: List[Block] = []
    page_place: Optional[str] = None
    pending: Optional[Tuple[str, str, str]] = None
    last_line = 1
    wanted = (nodes.literal_block, nodes.doctest_block, nodes.comment)
    for node in _parse(path).findall(lambda n: isinstance(n, wanted)):
        if _inside_message(node):
            continue
        if isinstance(node, nodes.comment):
            marker = _marker(node.astext())
            if marker is None:
                continue
            if marker[0] == "run-all":
                page_place = marker[1]
            else:
                pending = marker
            continue
        classes = node.get("classes", [])
        language = classes[1] if len(classes) > 1 and classes[0] == "code" else None
        text = node.astext()
        line = _source_lines(source, text, last_line)
        last_line = line + 1
        block = Block(page, line, text, language)
        if pending is not None:
            name, argument, body = pending
            pending = None
            if name == "not-run":
                block.not_run = argument or ""
                if not argument:
                    block.marker_error = "a not-run comment must say why"
            else:
                words = argument.split()
                block.place = words[0] if words else None
                block.flags = tuple(words[1:])
                block.setup = _dedent(body)
        elif language in NOT_CODE:
            block.not_run = f"a {language} block"
        if block.runs and block.place is None:
            block.place = page_place or "host"
        if block.runs and block.marker_error is None:
            if block.place not in PLACES:
                block.marker_error = f"unknown place {block.place!r} (one of {', '.join(PLACES)})"
            elif any(flag not in FLAGS for flag in block.flags):
                block.marker_error = f"unknown flag in {block.flags} (known: {', '.join(FLAGS)})"
        found.append(block)
    return found


def _dedent(body: str) -> str:
    import textwrap

    return textwrap.dedent(body).strip("\n")


@functools.lru_cache(maxsize=None)
def _all_blocks() -> Tuple[Block, ...]:
    blocks: List[Block] = []
    for path in pages():
        blocks.extend(blocks_of(path))
    return tuple(blocks)


def all_blocks() -> List[Block]:
    """Every block of every page (parsed once per process)."""
    return list(_all_blocks())


def unmarked_problems(blocks: Iterable[Block]) -> List[str]:
    """Blocks whose marker is wrong: each one a line naming the block."""
    return [f"{b.where}: {b.marker_error}" for b in blocks if b.marker_error]


def by_page(place: str) -> Dict[str, List[Block]]:
    """The runnable blocks of ``place``, page by page (pages without any left out)."""
    result: Dict[str, List[Block]] = {}
    for block in all_blocks():
        if block.runs and block.place == place and not block.marker_error:
            result.setdefault(block.page, []).append(block)
    return result


# -- running ------------------------------------------------------------------


def _substitute(text: str, substitutions: Mapping[str, str]) -> str:
    for old, new in substitutions.items():
        text = text.replace(old, new)
    return text


def run_python(block: Block, namespace: dict, substitutions: Mapping[str, str]) -> Optional[str]:
    """Run a Python or doctest block in ``namespace``; None, or what went wrong."""
    if block.setup:
        error = _exec(_substitute(block.setup, substitutions), f"{block.where} (set-up)", namespace)
        if error:
            return error
    text = _substitute(block.text, substitutions)
    if block.kind == "python":
        return _exec(text, block.where, namespace)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, namespace, block.where, str(ROOT / block.page), block.line - 1)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONS, verbose=False)
    runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    if runner.failures:
        return report.getvalue()
    if runner.tries == 0:
        return "no example found in a doctest block"
    return None


def _exec(source: str, name: str, namespace: dict) -> Optional[str]:
    out = io.StringIO()
    try:
        code = compile(source, name, "exec")
        with redirect_stdout(out):
            exec(code, namespace)
    except BaseException:  # noqa: BLE001 - reported, with the block's output so far
        return f"{name} raised:\n{traceback.format_exc()}output so far:\n{out.getvalue()}"
    return None


def _commands(block: Block) -> List[Tuple[str, str]]:
    """``(command, expected output)`` pairs of a transcript or shell block."""
    pairs: List[Tuple[str, str]] = []
    if block.kind == "transcript":
        for line in block.text.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], ""))
            elif pairs:
                command, expected = pairs[-1]
                pairs[-1] = (command, expected + line + "\n")
        return pairs
    for line in block.text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pairs.append((line, ""))
    return pairs


def run_shell(block: Block, cwd: str, env: Mapping[str, str], substitutions: Mapping[str, str],
              timeout: float = 120) -> Optional[str]:
    """Run a transcript or shell block in bash; None, or what went wrong."""
    checker = doctest.OutputChecker()
    pairs = _commands(block)
    if not pairs:
        return "no command found"
    script = ["set +e"]
    if block.setup:
        script.append(_substitute(block.setup, substitutions))
    for i, (command, _) in enumerate(pairs):
        # Each command's output and status end with a line of our own; the
        # status is put back so that an ``echo $?`` that follows sees it.
        script.append(f"{{ {_substitute(command, substitutions)}\n}} 2>&1 </dev/null; __rc=$?; "
                      f"printf '\\n@@sgpy-docs {i} %d@@\\n' $__rc; (exit $__rc)")
    try:
        done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=dict(env), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    pieces = re.split(r"\n?@@sgpy-docs (\d+) (-?\d+)@@\n", done.stdout)
    results: Dict[int, Tuple[str, int]] = {}
    for j in range(1, len(pieces) - 1, 3):
        results[int(pieces[j])] = (pieces[j - 1], int(pieces[j + 1]))
    problems = []
    varies = "output-varies" in block.flags or block.kind == "shell"
    for i, (command, expected) in enumerate(pairs):
        if i not in results:
            problems.append(f"$ {command}\n  did not run (bash stderr: {done.stderr.strip()})")
            continue
        output, status = results[i]
        output = output.lstrip("\n")
        if varies:
            if status != 0:
                problems.append(f"$ {command}\n  exit status {status}; output:\n{output}")
        elif not checker.check_output(_substitute(expected, substitutions), output + "\n" if output else "",
                                      OPTIONS):
            problems.append(f"$ {command}\n  expected:\n{expected}  got (exit status {status}):\n{output}")
    return "\n".join(problems) or None


def shell_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment shell blocks run in: this Python's bin directory first on PATH."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["COLUMNS"] = "200"
    if extra:
        env.update(extra)
    return env


def run_page(blocks: List[Block], *, namespace: Optional[dict] = None, cwd: str = ".",
             env: Optional[Mapping[str, str]] = None,
             substitutions: Optional[Mapping[str, str]] = None) -> Tuple[int, List[str]]:
    """Run one page's blocks of one place in order; (how many ran, failures)."""
    ns: dict = {"__name__": "__docs__"} if namespace is None else namespace
    subs = substitutions or {}
    failures = []
    ran = 0
    for block in blocks:
        assert block.runs and not block.marker_error, block
        if block.kind in ("transcript", "shell"):
            error = run_shell(block, cwd, env or shell_env(), subs)
        else:
            error = run_python(block, ns, subs)
        ran += 1
        if error:
            failures.append(f"--- {block.where} ({block.kind}) ---\n{error}")
    return ran, failures


def close_channels(namespace: dict) -> None:
    """Close every channel a page's examples left open."""
    for value in list(namespace.values()):
        close = getattr(value, "close", None)
        if close is not None and type(value).__name__.endswith("Channel"):
            try:
                close()
            except Exception:  # noqa: BLE001 - closing what the page left open
                pass
