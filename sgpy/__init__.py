"""sgpy: send SCSI commands to Linux devices through the sg driver.

``from sgpy import Channel, command`` is all most programs need::

    with Channel.from_path("/dev/sg3") as channel:
        io = channel.cmd.Inquiry()
        print(io.result)

The engine (:class:`Channel`, :class:`Reactor`) is imported on first use, so
that the pure layers (:mod:`sgpy.command`, :mod:`sgpy.sense`,
:mod:`sgpy.responses`, :mod:`sgpy.errors`) import without the C extension.
"""

from typing import TYPE_CHECKING, Any

from sgpy import errors
from sgpy.errors import *  # noqa: F401,F403

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    from sgpy import aio, command, constants, devices, handler, io, responses, sense
    from sgpy._interrupt import defer_signal
    from sgpy.channel import Channel
    from sgpy.devices import find
    from sgpy.reactor import Reactor, default_reactor

from sgpy import _urls
from sgpy._version import __version__ as __version__


def _open_iscsi(url: str, **options: Any) -> Any:
    """``iscsi://`` URLs: an :class:`sgpy.iscsi.IscsiChannel` (the iSCSI extension is loaded here, on first use)."""
    from sgpy.iscsi import IscsiChannel

    return IscsiChannel.from_url(url, **options)


_urls.register("iscsi", _open_iscsi)

_LAZY = {
    "Channel": ("sgpy.channel", "Channel"),
    "Reactor": ("sgpy.reactor", "Reactor"),
    "default_reactor": ("sgpy.reactor", "default_reactor"),
    "command": ("sgpy.command", None),
    "handler": ("sgpy.handler", None),
    "responses": ("sgpy.responses", None),
    "sense": ("sgpy.sense", None),
    "constants": ("sgpy.constants", None),
    "io": ("sgpy.io", None),
    "aio": ("sgpy.aio", None),
    "devices": ("sgpy.devices", None),
    "find": ("sgpy.devices", "find"),
    "defer_signal": ("sgpy._interrupt", "defer_signal"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sgpy' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> Any:
    return sorted(list(globals()) + list(_LAZY))
