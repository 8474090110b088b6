"""The commands, by the names the seed uses: ``from sgpy import command``.

``command.Read10(lba=0, transfer_length=1)``, ``command.TestUnitReady()``,
``command.Write6(lba=0, data=b"a" * 512)``...  Every command class, the
:func:`decode` function (CDB bytes back to a command), :class:`RawCommand`
for anything else and :func:`all_commands` are re-exported here from
:mod:`sgpy.cdb`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Type checkers see typed classes (fields, defaults, the type of
    # io.result), generated from the run-time ones by tools/gen_command_types.py.
    from sgpy._command_types import *  # noqa: F401,F403
    from sgpy._command_types import __all__
else:
    from sgpy.cdb import sat, sbc, spc, zbc
    from sgpy.cdb.base import Command, RawCommand, ReservedBitsWarning, all_commands, decode, lookup
    from sgpy.cdb.sat import *  # noqa: F401,F403
    from sgpy.cdb.sbc import *  # noqa: F401,F403
    from sgpy.cdb.spc import *  # noqa: F401,F403
    from sgpy.cdb.zbc import *  # noqa: F401,F403

    __all__ = ["Command", "RawCommand", "ReservedBitsWarning", "all_commands", "decode", "lookup"]
    __all__ += spc.__all__
    __all__ += sbc.__all__
    __all__ += zbc.__all__
    __all__ += sat.__all__
