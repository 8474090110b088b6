"""Raise SIGINT at one chosen bytecode instruction of a call: the tool of the Ctrl-C tests.

``tests/unit/test_interrupt.py`` walks a toy of the engine's bookkeeping with
it and ``tests/device/test_sync_fast_path.py`` walks ``Channel.execute``, one
instruction further each run, to check that an interruption anywhere leaves
nothing half done and is never lost.
"""

import signal
import sys
from types import FrameType
from typing import Any, Callable, Collection, Optional


def run_with_signal_at(fn: Callable[[], Any], codes: Collection[Any], at: int) -> Optional[int]:
    """Run ``fn()`` raising SIGINT before the ``at``-th bytecode instruction run in frames of ``codes``.

    Returns None when the signal was raised, else how many instructions ran
    there (``at`` was past the end).  The handler runs in the tracer's frame,
    whose caller is the traced frame, so the traced frame decides whether it
    is held back.
    """
    count = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            if count[0] == at:
                signal.raise_signal(signal.SIGINT)
            count[0] += 1
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code in codes:
            frame.f_trace_opcodes = True
            return local
        return None

    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(None)
    return None if count[0] > at else count[0]
