"""Compile sgpy's cffi extensions; everything else is in pyproject.toml.

Two extensions:

``sgpy._sgffi``
    the sg driver's helpers; always built.
``sgpy._iscsiffi``
    the iSCSI transport over libiscsi; it needs libiscsi's header
    ``<iscsi/iscsi.h>`` (Debian/Ubuntu: libiscsi-dev).  The environment
    variable ``SGPY_ISCSI`` decides: ``auto`` (the default) builds it when the
    header is there, ``require`` fails the build when it is not, ``skip``
    never builds it.

Besides the package, the wheel installs the man page sgpy(1) under its
prefix, as ``share/man/man1/sgpy.1`` (``DATA_FILES``).  It is made from
``docs/cli.rst`` by Sphinx's man builder and kept, generated, in
``docs/man/sgpy.1`` (``python tools/gen_man.py`` writes it again), so that
a build needs no Sphinx and sgpy no dependency at run time.

The build names each extension it builds or skips, and removes from its
output (``build/lib*``, and the source tree for in-place and editable
builds) any compiled extension it did not build this time, so that a stale
``build/`` directory cannot slip an old ``_iscsiffi`` into a wheel built
without libiscsi.  Both are abi3 (cffi compiles them against the limited
API), so one wheel serves every CPython from 3.9 on.
"""

import importlib.machinery
import os
import sys
import sysconfig
from typing import Optional, Set

from setuptools import setup
from setuptools.command.build_ext import build_ext

ISCSI_HEADER_DIRS = ("/usr/include", "/usr/local/include")
ISCSI_MODES = ("auto", "require", "skip")
#: The oldest CPython the abi3 wheel is for: pyproject.toml's requires-python.
LIMITED_API_TAG = "cp39"


def _say(message: str) -> None:
    """Print one line of the build's account of its extensions."""
    print(f"sgpy build: {message}", file=sys.stderr, flush=True)


def iscsi_header() -> Optional[str]:
    """Where libiscsi's ``<iscsi/iscsi.h>`` is installed, or None."""
    for d in ISCSI_HEADER_DIRS:
        path = os.path.join(d, "iscsi", "iscsi.h")
        if os.path.exists(path):
            return path
    return None


def iscsi_mode() -> str:
    """``SGPY_ISCSI`` (auto, require or skip); any other value stops the build."""
    mode = os.environ.get("SGPY_ISCSI", "auto").strip().lower() or "auto"
    if mode not in ISCSI_MODES:
        sys.exit(f"sgpy build: SGPY_ISCSI={mode!r} is not one of {', '.join(ISCSI_MODES)}")
    return mode


#: Files installed under the prefix (``<prefix>/<directory>/<file>``): the man page.
DATA_FILES = [("share/man/man1", ["docs/man/sgpy.1"])]

MODE = iscsi_mode()
HEADER = iscsi_header()
CFFI_MODULES = ["sgpy/_sg_build.py:ffibuilder"]
if MODE != "skip" and HEADER is not None:
    CFFI_MODULES.append("sgpy/_iscsi_build.py:ffibuilder")


def _module_of(filename: str) -> Optional[str]:
    """``_iscsiffi`` for ``_iscsiffi.abi3.so`` (any extension-module suffix), else None."""
    for suffix in sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True):
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return None


class BuildExt(build_ext):
    """setuptools' build_ext, which says what it builds and leaves nothing stale behind."""

    def run(self) -> None:
        """Account for each extension, build them, then prune extensions not built now."""
        _say("building sgpy._sgffi (the sg driver's helpers)")
        if "sgpy/_iscsi_build.py:ffibuilder" in CFFI_MODULES:
            _say(f"building sgpy._iscsiffi (iSCSI over libiscsi; {HEADER} found, SGPY_ISCSI={MODE})")
        elif MODE == "skip":
            _say("skipping sgpy._iscsiffi (iSCSI): SGPY_ISCSI=skip")
        elif MODE == "require":
            sys.exit("sgpy build: SGPY_ISCSI=require but libiscsi's header <iscsi/iscsi.h> is not in "
                     f"{' or '.join(ISCSI_HEADER_DIRS)} (Debian/Ubuntu: apt-get install libiscsi-dev)")
        else:
            _say("skipping sgpy._iscsiffi (iSCSI): libiscsi's header <iscsi/iscsi.h> is not installed "
                 "(Debian/Ubuntu: libiscsi-dev); SGPY_ISCSI=require makes this an error")
        super().run()
        built = {ext.name for ext in self.extensions}
        build_py = self.get_finalized_command("build_py")
        places = [os.path.join(self.build_lib, "sgpy")]
        if self.inplace:
            places.append(build_py.get_package_dir("sgpy"))
        for place in places:
            self._prune(place, built)

    def _prune(self, directory: str, built: Set[str]) -> None:
        """Remove compiled ``sgpy.*`` extensions in ``directory`` that are not in ``built``."""
        if not os.path.isdir(directory):
            return
        for name in sorted(os.listdir(directory)):
            module = _module_of(name)
            if module is not None and f"sgpy.{module}" not in built:
                path = os.path.join(directory, name)
                _say(f"removing {path}: an extension this build did not make")
                os.remove(path)


def _wheel_options() -> dict:
    """Tag the wheel abi3 unless this interpreter cannot build limited-API extensions."""
    if sysconfig.get_config_var("Py_GIL_DISABLED") or hasattr(sys, "gettotalrefcount"):
        return {}  # free-threaded and debug builds: cffi compiles against the full API there
    return {"bdist_wheel": {"py_limited_api": LIMITED_API_TAG}}


setup(
    cffi_modules=CFFI_MODULES,
    cmdclass={"build_ext": BuildExt},
    options=_wheel_options(),
    data_files=DATA_FILES,
)
