"""Inside the sandbox: the scsi_debug devices and their knobs.

These functions run in the User-Mode Linux guest that :mod:`sgpy.sandbox`
boots (where the process is root and ``insmod``/``rmmod`` work).  The pytest
plugin uses them to give each test the scsi_debug configuration it asks for.
"""

from __future__ import annotations

import glob
import os
import subprocess
import time
from typing import Dict, List, Mapping, Optional

from sgpy.sandbox import SandboxError, expected_devices, format_params, parse_params

__all__ = [
    "in_sandbox",
    "base_params",
    "current_params",
    "sg_devices",
    "block_devices",
    "load",
    "unload",
    "reload",
    "read_knob",
    "write_knob",
    "DRIVER_DIR",
]

#: scsi_debug's driver attributes (writable ones change behaviour at run
#: time); see the kernel's drivers/scsi/scsi_debug.c, "DRIVER_ATTR_RW".
DRIVER_DIR = "/sys/bus/pseudo/drivers/scsi_debug"

_current: Optional[Dict[str, str]] = None


def in_sandbox() -> bool:
    """True when this process runs inside an sgpy sandbox guest."""
    return bool(os.environ.get("SGPY_SANDBOX"))


def base_params() -> Dict[str, str]:
    """The scsi_debug parameters the sandbox booted with."""
    return parse_params(os.environ.get("SGPY_SANDBOX_SCSI_DEBUG", ""))


def current_params() -> Dict[str, str]:
    """The scsi_debug module parameters in force now."""
    return dict(_current) if _current is not None else base_params()


def sg_devices() -> List[str]:
    """``/dev/sgN`` paths of the sg devices present, in number order."""
    names = [os.path.basename(p) for p in glob.glob("/sys/class/scsi_generic/sg*")]
    names.sort(key=lambda n: int(n[2:]) if n[2:].isdigit() else 1 << 30)
    return [f"/dev/{n}" for n in names]


def block_devices() -> List[str]:
    """``/dev/sdX`` paths of the disks present."""
    return sorted(f"/dev/{os.path.basename(p)}" for p in glob.glob("/sys/block/sd*"))


def _tool(name: str) -> str:
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    raise SandboxError(f"{name} not found (package kmod)")


def _make_nodes() -> None:
    for d in glob.glob("/sys/class/scsi_generic/*") + glob.glob("/sys/block/sd*"):
        node = "/dev/" + os.path.basename(d)
        try:
            with open(os.path.join(d, "dev"), encoding="ascii") as f:
                major, minor = (int(x) for x in f.read().strip().split(":"))
        except (OSError, ValueError):
            continue
        if not os.path.exists(node):
            kind = 0o060000 if d.startswith("/sys/block") else 0o020000
            os.mknod(node, 0o600 | kind, os.makedev(major, minor))


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SandboxError(f"timed out waiting for {what}")
        time.sleep(0.02)


def unload() -> None:
    """Remove scsi_debug (its devices vanish).  Fails if a device is open."""
    global _current
    if not os.path.isdir("/sys/module/scsi_debug"):
        return
    # A device just deleted or closed is released in a work queue: give
    # rmmod a few tries before calling the module busy.
    deadline = time.monotonic() + 5.0
    while True:
        proc = subprocess.run([_tool("rmmod"), "scsi_debug"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SandboxError(
            "rmmod scsi_debug failed (is a device still open? close every Channel "
            "before asking for other scsi_debug parameters): " + proc.stdout.decode(errors="replace").strip()
        )
    _wait_for(lambda: not sg_devices(), 10.0, "scsi_debug's devices to go away")
    _current = {}


def load(params: Mapping[str, object]) -> List[str]:
    """Load scsi_debug with ``params``; return the sg device paths."""
    global _current
    ko = os.environ.get("SGPY_SANDBOX_SCSI_DEBUG_KO")
    if not ko:
        raise SandboxError("not inside an sgpy sandbox (SGPY_SANDBOX_SCSI_DEBUG_KO is not set)")
    p = parse_params(params)
    proc = subprocess.run([_tool("insmod"), ko] + [f"{k}={v}" for k, v in p.items()],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SandboxError(f"insmod scsi_debug {format_params(p)} failed: "
                           + proc.stdout.decode(errors="replace").strip())
    n = expected_devices(p)
    _wait_for(lambda: len(sg_devices()) >= n, 10.0, f"{n} scsi_debug device(s)")
    _make_nodes()
    _wait_for(lambda: all(os.path.exists(d) for d in sg_devices()), 5.0, "sg device nodes")
    _current = p
    return sg_devices()


def reload(params: Mapping[str, object]) -> List[str]:
    """Replace scsi_debug with one loaded with ``params`` (when they differ)."""
    p = parse_params(params)
    if os.path.isdir("/sys/module/scsi_debug") and p == current_params():
        return sg_devices()
    unload()
    return load(p)


def read_knob(name: str) -> str:
    """Read one of scsi_debug's driver attributes (e.g. ``opts``)."""
    with open(os.path.join(DRIVER_DIR, name), encoding="ascii") as f:
        return f.read().strip()


def write_knob(name: str, value: object) -> None:
    """Write one of scsi_debug's run-time driver attributes."""
    path = os.path.join(DRIVER_DIR, name)
    text = ("1" if value else "0") if isinstance(value, bool) else str(value)
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(text)
    except OSError as exc:
        raise SandboxError(f"cannot set scsi_debug {name}={text}: {exc.strerror} ({path})") from exc
