"""The commands, by the names the seed uses: ``from sgpy import command``.

``command.Read10(lba=0, transfer_length=1)``, ``command.TestUnitReady()``,
``command.Write6(lba=0, data=b"a" * 512)``...  Every command class, the
:func:`decode` function (CDB bytes back to a command), :class:`RawCommand`
for anything else and :func:`all_commands` are re-exported here from
:mod:`sgpy.cdb`.
"""

from __future__ import annotations

from sgpy.cdb import *  # noqa: F401,F403
from sgpy.cdb import __all__ as _cdb_all

__all__ = list(_cdb_all)
