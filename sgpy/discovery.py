"""iSCSI discovery under its own name: the functions and values of :mod:`sgpy.iscsi` that ``sgpy discover`` uses.

Every name here is the same object as in :mod:`sgpy.iscsi`, where discovery
is implemented and documented (it shares the connection and login code of
an iSCSI channel): :func:`~sgpy.iscsi.discover`, :func:`~sgpy.iscsi.send_targets`,
:func:`~sgpy.iscsi.parse_portal`, :class:`~sgpy.iscsi.Target`,
:class:`~sgpy.iscsi.Lun`, :class:`~sgpy.iscsi.Portal` and
:class:`~sgpy.iscsi.NotAnIscsiPortal`.
"""

from __future__ import annotations

from sgpy.iscsi import Lun, NotAnIscsiPortal, Portal, Target, discover, parse_portal, send_targets

__all__ = [
    "Portal",
    "Lun",
    "Target",
    "NotAnIscsiPortal",
    "parse_portal",
    "send_targets",
    "discover",
]
