"""Argument checks shared by channels, jobs and transports.

Every public entry point validates its arguments before it changes any
state (takes a slot, counts an IO as outstanding, opens an fd), so a bad
value raises here, with the allowed range named, and leaves the channel as
it was.  Pure: nothing here does I/O.
"""

from __future__ import annotations

import math
from typing import Any, Type

__all__ = ["TIMEOUT_MAX_MS", "timeout_ms", "whole", "seconds", "policy", "block_size"]

#: The largest command timeout: ``sg_io_hdr.timeout`` is an ``unsigned int``
#: of milliseconds (include/uapi/scsi/sg.h); sg_new_write in
#: drivers/scsi/sg.c converts it with msecs_to_jiffies and caps the result.
TIMEOUT_MAX_MS = 0xFFFFFFFF


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def timeout_ms(value: Any, what: str = "timeout") -> int:
    """``value`` as a command timeout in whole milliseconds, 1 to 2**32-1.

    Zero is refused too: sg would hand it to the block layer as "the
    queue's default" (block/blk-timeout.c, blk_add_timer), and the iSCSI
    transport would time the command out at once; neither is what a caller
    asking for 0 ms means.
    """
    if not _is_int(value):
        raise TypeError(f"{what} is a whole number of milliseconds (an int from 1 to {TIMEOUT_MAX_MS}), "
                        f"not {type(value).__name__} {value!r}")
    if not 1 <= value <= TIMEOUT_MAX_MS:
        raise ValueError(f"{what}={value} ms is out of range: pass 1 to {TIMEOUT_MAX_MS} ms "
                         "(sg_io_hdr's timeout is a 32-bit count of milliseconds)")
    return int(value)


def whole(value: Any, what: str, low: int = 1, high: int = 0, error: Type[ValueError] = ValueError) -> int:
    """``value`` as an int of at least ``low`` (and at most ``high`` when non-zero).

    A value of another type raises TypeError; one out of range ``error``.
    """
    if not _is_int(value):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    if value < low or (high and value > high):
        bound = f"{low} to {high}" if high else f"at least {low}"
        raise error(f"{what}={value} is out of range: it must be {bound}")
    return int(value)


def seconds(value: Any, what: str = "seconds", error: Type[ValueError] = ValueError) -> float:
    """``value`` as a finite, positive number of seconds (TypeError, or ``error`` when out of range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} is a number of seconds (int or float), not {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise error(f"{what}={value!r} is not a finite, positive number of seconds")
    return float(value)


def policy(value: Any) -> Any:
    """``value`` as a channel's safety policy: a :class:`sgpy.safety.Policy`, or None."""
    from sgpy import safety

    if value is None or isinstance(value, safety.Policy):
        return value
    raise TypeError(f"policy must be a sgpy.safety.Policy or None, not {type(value).__name__} {value!r}: pass "
                    "sgpy.safety.READ_ONLY, sgpy.safety.ALLOW_DATA_LOSS or sgpy.safety.ALLOW_ALL "
                    "(or read_only=True)")


def block_size(value: Any) -> Any:
    """``value`` as a channel's logical block size in bytes: a positive int, or None (learn it)."""
    if value is None:
        return None
    return whole(value, "block_size")
