"""Which transport opens which URL scheme.

:meth:`sgpy.channel.Channel.from_url` (and ``from_path`` given a URL) looks
the scheme up here, so the sg channel module never imports the transports
built on top of it (the iSCSI channel is a Channel, so ``sgpy.iscsi``
imports ``sgpy.channel``, never the other way).  The package registers its
own transports when it is imported (``sgpy/__init__.py``), each as a
function that imports its module on first use.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

__all__ = ["register", "opener_for"]

_OPENERS: Dict[str, Callable[..., Any]] = {}


def register(scheme: str, opener: Callable[..., Any]) -> None:
    """Open URLs ``scheme://...`` with ``opener(url, **options)`` (scheme compared without case)."""
    if not scheme.isalnum():
        raise ValueError(f"a URL scheme is letters and digits, not {scheme!r}")
    _OPENERS[scheme.lower()] = opener


def opener_for(url: str) -> Optional[Callable[..., Any]]:
    """The opener of ``url``'s scheme, or None when ``url`` is no URL of a registered scheme."""
    scheme, sep, _rest = url.partition("://")
    if not sep:
        return None
    return _OPENERS.get(scheme.lower())
