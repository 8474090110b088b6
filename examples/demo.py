"""The sgpy demo: the command line on this machine's first sg device.

Runs, and shows as a terminal transcript::

    sgpy list
    sgpy inq DEVICE
    sgpy inq DEVICE --vpd 0x83
    sgpy readcap DEVICE
    sgpy bench DEVICE --seconds 2

``python examples/demo.py [DEVICE]``; without DEVICE, the first sg device
this user may open.  Exits with the first failing command's status.
"""

import os
import shutil
import subprocess
import sys
from typing import List, Optional

import sgpy


def sgpy_command() -> List[str]:
    """The installed ``sgpy`` script next to this interpreter, else ``python -m sgpy``."""
    script = os.path.join(os.path.dirname(sys.executable), "sgpy")
    if os.access(script, os.X_OK):
        return [script]
    found = shutil.which("sgpy")
    return [found] if found else [sys.executable, "-m", "sgpy"]


def pick_device(argv: List[str]) -> Optional[str]:
    if argv:
        return argv[0]
    usable = [d for d in sgpy.devices() if d.accessible]
    return usable[0].path if usable else None


def run(prog: List[str], *args: str) -> int:
    print(f"$ sgpy {' '.join(args)}", flush=True)
    status = subprocess.run(prog + list(args)).returncode
    print(flush=True)
    return status


def main(argv: List[str]) -> int:
    prog = sgpy_command()
    status = run(prog, "list")
    if status:
        return status
    device = pick_device(argv)
    if device is None:
        print("demo: no sg device this user may open (see the ACCESS column above)", file=sys.stderr)
        return 4
    for args in (["inq", device], ["inq", device, "--vpd", "0x83"], ["readcap", device],
                 ["bench", device, "--seconds", "2"]):
        status = run(prog, *args)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
