"""The distribution as users get it: the sdist and the wheel.

Builds both from a copy of this source tree with this venv's own build tools
(``python -m build --no-isolation``: the wheel is built from the sdist, so a
file missing from the sdist breaks the wheel), then checks what users and
the package index see: the name ``sgpy-scsi``, the version, the license and
its PEP 639 metadata, the abi3 tag, what the sdist carries, the man page
the wheel installs.  A second build
in the copied tree, with ``SGPY_ISCSI=skip`` over the ``build/`` directory of
a first one, must not ship the iSCSI extension the first one left there.
Last, the wheel is installed in a fresh venv (its dependencies fetched as
wheels first, then everything installed with ``--no-index``) and run from
outside this tree.

About a minute: two compilations of each extension and a venv.
"""

from __future__ import annotations

import email.parser
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, NamedTuple, Optional

import pytest

import sgpy

REPO = Path(__file__).resolve().parents[2]
VERSION = sgpy.__version__
NAME = "sgpy-scsi"
STEM = f"sgpy_scsi-{VERSION}"
ISCSI_HEADER = any(os.path.exists(os.path.join(d, "iscsi", "iscsi.h")) for d in ("/usr/include", "/usr/local/include"))
# Under CI a dependency that cannot be fetched fails the install test instead of skipping it.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# What a copy of the tree leaves behind: VCS data, venvs, caches and every
# build product, so that the builds below start from sources only.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", "*.so", "*.o",
    ".pytest_cache", ".mypy_cache", ".hypothesis", "_build", "_sgffi.c", "_iscsiffi.c",
)


class Built(NamedTuple):
    """A build's output directory, its files, and what it printed."""

    out: Path
    files: List[Path]
    log: str


def _env(**overrides: str) -> Dict[str, str]:
    """This environment without PYTHONPATH or a caller's SGPY_ISCSI, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SGPY_ISCSI")}
    env.update(overrides)
    return env


def _run(argv: List[str], *, cwd: Path, env: Optional[Mapping[str, str]] = None,
         check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``argv``; when ``check``, fail the test with its output if it fails."""
    proc = subprocess.run(argv, cwd=cwd, env=dict(env) if env is not None else _env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stdout[-6000:]}")
    return proc


def _build(src: Path, out: Path, *args: str, **env: str) -> Built:
    """``python -m build --no-isolation ARGS --outdir OUT SRC`` with ``env`` added."""
    proc = _run([sys.executable, "-m", "build", "--no-isolation", *args, "--outdir", str(out), str(src)],
                cwd=src, env=_env(**env))
    return Built(out, sorted(out.iterdir()), proc.stdout)


def _one(built: Built, suffix: str) -> Path:
    [path] = [p for p in built.files if p.name.endswith(suffix)]
    return path


def _metadata(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text)


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this tree's sources (what ``git status`` shows, built products left out)."""
    dest = tmp_path_factory.mktemp("dist") / "src"
    shutil.copytree(REPO, dest, ignore=_NOT_SOURCES)
    return dest


@pytest.fixture(scope="module")
def dist(src: Path) -> Built:
    """The sdist, and the wheel built from it, as ``python -m build`` makes them."""
    return _build(src, src.parent / "dist", SGPY_ISCSI="auto")


@pytest.fixture(scope="module")
def skip_build(src: Path) -> Built:
    """A wheel built with ``SGPY_ISCSI=skip`` in a tree whose ``build/`` holds an iSCSI extension."""
    _build(src, src.parent / "in-tree", "--wheel", SGPY_ISCSI="auto")
    stale = sorted(src.glob("build/lib*/sgpy/_iscsiffi*.so"))
    if not stale:  # no libiscsi here: the first build made none, so plant one where it would be
        [lib] = src.glob("build/lib*/sgpy")
        (lib / "_iscsiffi.abi3.so").write_bytes(b"stale")
    return _build(src, src.parent / "skip", "--wheel", SGPY_ISCSI="skip")


def test_wheel_is_named_sgpy_scsi_and_tagged_abi3(dist: Built) -> None:
    wheel = _one(dist, ".whl")
    assert wheel.name == f"{STEM}-cp39-abi3-linux_{platform.machine()}.whl"
    with zipfile.ZipFile(wheel) as z:
        tags = [line for line in z.read(f"{STEM}.dist-info/WHEEL").decode().splitlines() if line.startswith("Tag:")]
        extensions = sorted(n for n in z.namelist() if n.endswith(".so"))
    assert tags == [f"Tag: cp39-abi3-linux_{platform.machine()}"]
    expected = ["sgpy/_iscsiffi.abi3.so", "sgpy/_sgffi.abi3.so"] if ISCSI_HEADER else ["sgpy/_sgffi.abi3.so"]
    assert extensions == expected


def test_the_build_names_each_extension(dist: Built) -> None:
    assert "sgpy build: building sgpy._sgffi" in dist.log
    if ISCSI_HEADER:
        assert "sgpy build: building sgpy._iscsiffi" in dist.log
    else:
        assert "sgpy build: skipping sgpy._iscsiffi" in dist.log


def test_wheel_metadata_and_license(dist: Built) -> None:
    with zipfile.ZipFile(_one(dist, ".whl")) as z:
        meta = _metadata(z.read(f"{STEM}.dist-info/METADATA").decode())
        license_text = z.read(f"{STEM}.dist-info/licenses/LICENSE").decode()
        entry_points = z.read(f"{STEM}.dist-info/entry_points.txt").decode()
    assert meta["Name"] == NAME
    assert meta["Version"] == VERSION
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.9"
    requires = meta.get_all("Requires-Dist") or []
    assert "cffi>=1.15" in requires and "attrs>=22.2" in requires
    assert license_text == (REPO / "LICENSE").read_text()
    assert "BSD 3-Clause" in license_text and "The sgpy authors" in license_text
    assert "sgpy = sgpy.cli:main" in entry_points and "sgpy = sgpy.pytest_plugin" in entry_points


def test_wheel_carries_the_man_page(dist: Built) -> None:
    with zipfile.ZipFile(_one(dist, ".whl")) as z:
        data = sorted(n for n in z.namelist() if n.startswith(f"{STEM}.data/"))
        page = z.read(f"{STEM}.data/data/share/man/man1/sgpy.1").decode()
    assert data == [f"{STEM}.data/data/share/man/man1/sgpy.1"]
    assert page == (REPO / "docs" / "man" / "sgpy.1").read_text(encoding="utf-8")


def test_wheel_carries_the_json_schema(dist: Built) -> None:
    # sgpy.cli.JSON_SCHEMA_PATH names the file beside cli.py: an installed sgpy must have it there
    with zipfile.ZipFile(_one(dist, ".whl")) as z:
        shipped = z.read("sgpy/cli_schema.json").decode()
    assert shipped == (REPO / "sgpy" / "cli_schema.json").read_text(encoding="utf-8")


def test_sdist_carries_sources_tests_docs_and_license(dist: Built) -> None:
    sdist = _one(dist, ".tar.gz")
    assert sdist.name == f"{STEM}.tar.gz"
    with tarfile.open(sdist) as t:
        names = {n[len(STEM) + 1:] for n in t.getnames() if n.startswith(STEM + "/")}
        pkg_info = t.extractfile(f"{STEM}/PKG-INFO").read().decode()  # type: ignore[union-attr]
    for required in ("LICENSE", "CHANGELOG.rst", "README.rst", "pyproject.toml", "setup.py", "MANIFEST.in",
                     "sgpy/_version.py", "sgpy/_sg.c", "sgpy/_sg.h", "sgpy/_iscsi.c", "sgpy/_iscsi.h",
                     "sgpy/sandbox/umlfix.c", "sgpy/py.typed", "sgpy/cli_schema.json", "docs/conf.py", "docs/index.rst",
                     "tests/packaging/test_dist.py", "scripts/setup", "examples/demo.py", "docs/man/sgpy.1",
                     "tools/gen_man.py"):
        assert required in names, required
    assert any(n.startswith("tests/unit/data/") and n.endswith(".json") for n in names)
    built_products = [n for n in names if n.endswith((".so", ".o", ".pyc")) or "__pycache__" in n
                      or n in ("sgpy/_sgffi.c", "sgpy/_iscsiffi.c") or n.startswith("docs/_build")]
    assert built_products == []
    meta = _metadata(pkg_info)
    assert meta["Name"] == NAME and meta["Version"] == VERSION
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_a_stale_build_dir_adds_no_extension(skip_build: Built) -> None:
    with zipfile.ZipFile(_one(skip_build, ".whl")) as z:
        extensions = sorted(n for n in z.namelist() if n.endswith(".so"))
    assert extensions == ["sgpy/_sgffi.abi3.so"]
    assert "sgpy build: skipping sgpy._iscsiffi (iSCSI): SGPY_ISCSI=skip" in skip_build.log
    assert "_iscsiffi.abi3.so: an extension this build did not make" in skip_build.log


def test_an_unknown_sgpy_iscsi_value_stops_the_build(src: Path) -> None:
    proc = _run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir",
                 str(src.parent / "bad"), str(src)], cwd=src, env=_env(SGPY_ISCSI="maybe"), check=False)
    assert proc.returncode != 0
    assert "SGPY_ISCSI='maybe' is not one of auto, require, skip" in proc.stdout


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the runtime dependencies (from the index or pip's cache)."""
    dest = tmp_path_factory.mktemp("wheelhouse")
    proc = _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "--dest", str(dest),
                 "cffi>=1.15", "attrs>=22.2"], cwd=dest, check=False)
    if proc.returncode != 0:
        message = f"cannot fetch wheels of cffi and attrs:\n{proc.stdout[-3000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return dest


def test_wheel_installs_and_runs_in_a_fresh_venv(dist: Built, skip_build: Built, wheelhouse: Path,
                                                 tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python, pip = str(venv / "bin" / "python"), [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _run([*pip, "install", "-q", "--no-index", "--only-binary", NAME, "--find-links", str(dist.out),
          "--find-links", str(wheelhouse), f"{NAME}=={VERSION}"], cwd=tmp_path)

    # From outside this tree, so that "import sgpy" finds the installed copy.
    assert _run([str(venv / "bin" / "sgpy"), "--version"], cwd=tmp_path).stdout.strip() == f"sgpy {VERSION}"
    probe = ("import importlib.metadata as m, sgpy, sgpy._sgffi; "
             "print(sgpy.__version__, m.version('sgpy-scsi'), sgpy.__file__)")
    version, dist_version, where = _run([python, "-c", probe], cwd=tmp_path).stdout.split()
    assert (version, dist_version) == (VERSION, VERSION)
    assert where.startswith(str(venv))
    iscsi = _run([python, "-c", "import sgpy._iscsiffi"], cwd=tmp_path, check=False)
    assert (iscsi.returncode == 0) == ISCSI_HEADER

    # The man page lands under the prefix, where man-db looks beside bin/; completion needs nothing more.
    man_page = venv / "share" / "man" / "man1" / "sgpy.1"
    assert man_page.read_text(encoding="utf-8") == (REPO / "docs" / "man" / "sgpy.1").read_text(encoding="utf-8")
    if shutil.which("man"):
        # Standard output alone (man's warnings on stderr could land inside a multibyte character of a
        # merged stream), in a UTF-8 locale so that groff writes the page's dashes and quotes as UTF-8.
        man = subprocess.run(["man", "-l", str(man_page)], cwd=tmp_path, capture_output=True, timeout=120,
                             env=_env(MANPAGER="cat", MANWIDTH="80", LC_ALL="C.UTF-8"))
        assert man.returncode == 0, man.stderr.decode(errors="replace")
        assert "sgpy discover" in man.stdout.decode("utf-8")
    for shell in ("bash", "zsh"):
        script = _run([str(venv / "bin" / "sgpy"), "completion", shell], cwd=tmp_path).stdout
        assert "_sgpy" in script and "discover" in script

    # The wheel built without iSCSI: an iscsi:// URL gets one line of advice, no traceback.
    _run([*pip, "install", "-q", "--no-index", "--no-deps", "--force-reinstall", str(_one(skip_build, ".whl"))],
         cwd=tmp_path)
    proc = subprocess.run([str(venv / "bin" / "sgpy"), "inq", "iscsi://127.0.0.1/iqn.2024-01.org.example:none/0"],
                          cwd=tmp_path, env=_env(), text=True, capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sgpy inq: iSCSI needs sgpy's extension sgpy._iscsiffi")
    assert "libiscsi-dev" in lines[0] and "--no-binary sgpy-scsi sgpy-scsi" in lines[0]
