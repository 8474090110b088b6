"""SCSI commands as frozen, validated, reversible CDB values.

The classes live in one module per standard — :mod:`sgpy.cdb.spc`,
:mod:`sgpy.cdb.sbc`, :mod:`sgpy.cdb.zbc`, :mod:`sgpy.cdb.sat` — on top of
:mod:`sgpy.cdb.base`.  Importing this package registers them all, so
:func:`decode` knows every one.  The public spelling is :mod:`sgpy.command`.
"""

from __future__ import annotations

from sgpy.cdb import sat, sbc, spc, zbc
from sgpy.cdb.base import Command, RawCommand, ReservedBitsWarning, all_commands, decode, lookup
from sgpy.cdb.sat import *  # noqa: F401,F403
from sgpy.cdb.sbc import *  # noqa: F401,F403
from sgpy.cdb.spc import *  # noqa: F401,F403
from sgpy.cdb.zbc import *  # noqa: F401,F403

__all__ = [
    "Command",
    "RawCommand",
    "ReservedBitsWarning",
    "all_commands",
    "decode",
    "lookup",
    *spc.__all__,
    *sbc.__all__,
    *zbc.__all__,
    *sat.__all__,
]
