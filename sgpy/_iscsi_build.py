"""cffi build script for ``sgpy._iscsiffi``, the iSCSI extension over libiscsi.

Optional: ``setup.py`` builds it only where ``<iscsi/iscsi.h>`` exists
(Debian package ``libiscsi-dev``), so sgpy installs without it.
``_iscsi.h`` is the cdef; ``_iscsi.c`` holds the helpers and is compiled as
the module's source prefix, so every declaration is checked against
libiscsi's own header.  Only :mod:`sgpy._iscsi_binding` imports the result.
"""

from __future__ import annotations

import os

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read()


def header_present() -> bool:
    """True when libiscsi's development header is installed."""
    return any(os.path.exists(os.path.join(d, "iscsi", "iscsi.h")) for d in ("/usr/include", "/usr/local/include"))


ffibuilder = FFI()
ffibuilder.cdef(_read("_iscsi.h"))
ffibuilder.set_source(
    "sgpy._iscsiffi",
    _read("_iscsi.c"),
    libraries=["iscsi"],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
