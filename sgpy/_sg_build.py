"""cffi build script for ``sgpy._sgffi``, the sg extension.

The module is named ``_sgffi`` (not ``_sg``) because cffi writes its
generated C file under the module's name, which would overwrite ``_sg.c``.
``_sg.h`` is the cdef; ``_sg.c`` holds the helpers and is compiled as the
module's source prefix, so the ABI is checked against ``<scsi/sg.h>``.
"""

from __future__ import annotations

import os

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read()


ffibuilder = FFI()
ffibuilder.cdef(_read("_sg.h"))
ffibuilder.set_source(
    "sgpy._sgffi",
    _read("_sg.c"),
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
