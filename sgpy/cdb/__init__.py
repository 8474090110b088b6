"""SCSI commands as frozen, validated, reversible CDB values.

The classes live in one module per standard — :mod:`sgpy.cdb.spc`,
:mod:`sgpy.cdb.sbc`, :mod:`sgpy.cdb.zbc`, :mod:`sgpy.cdb.sat` — on top of
:mod:`sgpy.cdb.base`.  Importing this package registers them all, so
:func:`sgpy.cdb.base.decode` knows every one.  The public spelling, with
every class, is :mod:`sgpy.command`.
"""

from sgpy.cdb import sat, sbc, spc, zbc  # noqa: F401  (registers every command)
