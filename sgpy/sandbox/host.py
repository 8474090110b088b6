"""Which way the sandbox runs on this host: probed, decided, cached.

User-Mode Linux runs guest programs on the host CPU and carries their
registers across every guest system call and page fault through ptrace.
Whether it does so correctly depends on the host: its kernel, its CPU's
XSAVE layout, and the UML build (see ``umlfix.c``).  So nothing here goes
by CPU name.  The sandbox boots UML once as it is and runs a check in the
guest (``regcheck.c``: every enabled vector register and the x87/SSE
control words across a system call, a page fault and a signal, and glibc's
memcpy over fresh pages; then a Python smoke test whose output must equal
the host's).  If that fails it tries again with the LD_PRELOAD helper; if
that fails too, UML cannot be trusted on this host and the QEMU backend
(full emulation: slower, but independent of the host's ptrace) is used.

The decision is a pure function of the probe results (:func:`decide`), so it
is unit-tested with recorded probes of each kind of host.  It is cached per
:class:`HostFacts` (host kernel, UML binary, CPU model and flags, and the
check programs themselves), so a changed host probes again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Dict, List, Optional, Sequence, Tuple

import attrs

__all__ = [
    "UML",
    "UML_HELPER",
    "HostFacts",
    "Probe",
    "Decision",
    "decide",
    "next_probe",
    "load_decision",
    "save_decision",
    "SMOKE_CODE",
    "smoke_expected",
]

#: The two ways UML can be started: as it is, or with the umlfix.c helper.
UML = "uml"
UML_HELPER = "uml+umlfix"
_PATHS = (UML, UML_HELPER)

#: Bumped when what a probe checks changes, so cached decisions are redone.
_PROBE_VERSION = "2"

#: Run by the guest's Python: hashing, compression, copying and float sums
#: over a few MiB, printed as one line that must equal the host's.  Only
#: exactly rounded arithmetic (IEEE division and ``math.fsum``): no libm
#: functions whose last bit may depend on the CPU's code path.
SMOKE_CODE = """\
import hashlib, json, math, zlib
b = bytearray(range(256)) * 8192
c = bytes(b[1:]) + bytes(b[:1])
h = hashlib.sha256(c).hexdigest()[:16]
z = zlib.crc32(zlib.compress(c, 6))
f = math.fsum(1.0 / i for i in range(1, 100001))
s = sorted(str(i * 7919 % 10007) for i in range(20000))
j = hashlib.sha256(json.dumps(s).encode()).hexdigest()[:16]
print("pysmoke", h, z, repr(f), j)
"""


def smoke_expected() -> str:
    """The line :data:`SMOKE_CODE` prints, computed in this (host) process."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(SMOKE_CODE, "<sgpy sandbox smoke>", "exec"), {})
    return buf.getvalue().strip()


@attrs.frozen
class HostFacts:
    """What a decision depends on; a change of any of these probes again."""

    kernel: str  #: host kernel release and build (``uname -rv``)
    uml: str  #: the UML binary: path, size, modification time
    cpu: str  #: CPU model name
    cpu_flags: str  #: the CPU flags the host kernel reports, hashed
    tools: str  #: hash of umlfix.c, regcheck.c and the probe version

    @classmethod
    def read(cls, uml_path: str, tool_sources: Sequence[str]) -> "HostFacts":
        """Read this host's facts (``/proc/cpuinfo``, ``uname``, the UML binary)."""
        model, flags = "unknown", ""
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    key = key.strip()
                    if key == "model name" and model == "unknown":
                        model = value.strip()
                    elif key == "flags" and not flags:
                        flags = " ".join(sorted(value.split()))
        except OSError:
            pass
        try:
            st = os.stat(uml_path)
            uml = f"{uml_path}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            uml = f"{uml_path}:missing"
        tools = hashlib.sha256(_PROBE_VERSION.encode())
        for path in tool_sources:
            with open(path, "rb") as f:
                tools.update(f.read())
        un = os.uname()
        return cls(
            kernel=f"{un.release} {un.version}",
            uml=uml,
            cpu=model,
            cpu_flags=hashlib.sha256(flags.encode()).hexdigest()[:16],
            tools=tools.hexdigest()[:16],
        )

    def key(self) -> str:
        """A file-name-safe digest of all facts."""
        text = json.dumps(attrs.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@attrs.frozen
class Probe:
    """One boot of UML running the check: what it printed and how it ended."""

    path: str  #: :data:`UML` or :data:`UML_HELPER`
    #: exit status of the check command; None when the guest never got that
    #: far (UML died, or the guest's init was killed)
    status: Optional[int]
    output: str  #: the check command's standard output and error
    console: str  #: the end of the kernel console
    expected_smoke: str  #: the host's :data:`SMOKE_CODE` line

    @property
    def ok(self) -> bool:
        """The guest ran, every register check passed, Python's output matched."""
        return (self.status == 0 and "regcheck result ok" in self.output
                and self.expected_smoke in self.output.splitlines())

    def why(self) -> str:
        """One line saying what went wrong (empty when :attr:`ok`)."""
        if self.ok:
            return ""
        m = re.search(r"ptrace set fp regs failed[^\n]*", self.console)
        if m:
            return f"UML cannot restore guest FPU state ({m.group(0).strip()})"
        bad = [ln.strip() for ln in self.output.splitlines() if ln.startswith("regcheck ") and " BAD" in ln
               and not ln.startswith("regcheck result")]
        if bad:
            return "guest registers are corrupted: " + bad[0][len("regcheck "):]
        smoke = [ln for ln in self.output.splitlines() if ln.startswith("pysmoke ")]
        if smoke:
            return f"guest Python computed {smoke[0]!r}, the host {self.expected_smoke!r}"
        for pattern in (r"[^\n]*segfault at[^\n]*", r"Fatal Python error[^\n]*", r"Segmentation fault",
                        r"Kernel panic[^\n]*"):
            m = re.search(pattern, self.output + "\n" + self.console)
            if m:
                return f"a guest program crashed ({m.group(0).strip()})"
        if self.status is None:
            return "the guest stopped before the check finished"
        return f"the check exited with status {self.status}"

    def to_json(self) -> Dict[str, object]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, object]) -> "Probe":
        status = data.get("status")
        return cls(path=str(data["path"]), status=None if status is None else int(str(status)),
                   output=str(data["output"]), console=str(data["console"]),
                   expected_smoke=str(data["expected_smoke"]))


@attrs.frozen
class Decision:
    """How the sandbox runs on this host, and why."""

    backend: str  #: ``"uml"``, ``"qemu"``, or ``"none"`` when nothing works
    helper: bool  #: UML only: preload umlfix.c
    reason: str  #: one line for people
    probes: Tuple[Probe, ...] = ()

    @property
    def path(self) -> str:
        """``uml``, ``uml+umlfix``, ``qemu`` or ``none``."""
        if self.backend == "uml":
            return UML_HELPER if self.helper else UML
        return self.backend

    def to_json(self) -> Dict[str, object]:
        return {"backend": self.backend, "helper": self.helper, "reason": self.reason,
                "probes": [p.to_json() for p in self.probes]}

    @classmethod
    def from_json(cls, data: Dict[str, object]) -> "Decision":
        probes = data.get("probes") or []
        assert isinstance(probes, list)
        return cls(backend=str(data["backend"]), helper=bool(data["helper"]), reason=str(data["reason"]),
                   probes=tuple(Probe.from_json(p) for p in probes))


def next_probe(probes: Sequence[Probe]) -> Optional[str]:
    """Which UML path to probe next, or None when the probes so far decide.

    UML as it is comes first (no helper is loaded on a host that does not
    need one); the helper only when that failed.
    """
    done = {p.path for p in probes}
    if any(p.ok for p in probes):
        return None
    for path in _PATHS:
        if path not in done:
            return path
    return None


def decide(probes: Sequence[Probe], *, qemu_missing: str = "") -> Decision:
    """The decision the probes so far make; ``qemu_missing`` says why QEMU cannot be used (empty: it can)."""
    for path in _PATHS:
        for p in probes:
            if p.path == path and p.ok:
                others = [q for q in probes if q.path != path]
                if path == UML:
                    reason = "User-Mode Linux runs the guest correctly as it is"
                else:
                    reason = ("User-Mode Linux needs the XSTATE helper on this host ("
                              + "; ".join(q.why() for q in others) + ")")
                return Decision("uml", path == UML_HELPER, reason, tuple(probes))
    whys = "; ".join(f"{p.path}: {p.why()}" for p in probes) or "not probed"
    if not qemu_missing:
        return Decision("qemu", False, f"User-Mode Linux cannot run guest programs correctly here ({whys}); "
                        "using QEMU instead (slower)", tuple(probes))
    return Decision("none", False, f"User-Mode Linux cannot run guest programs correctly here ({whys}), "
                    f"and the QEMU backend is not available: {qemu_missing}", tuple(probes))


def _cache_file(cache_dir: str, facts: HostFacts) -> str:
    return os.path.join(cache_dir, f"sandbox-host-{facts.key()}.json")


def load_decision(cache_dir: str, facts: HostFacts) -> Optional[Decision]:
    """The decision cached for these facts, or None (none, or unreadable)."""
    try:
        with open(_cache_file(cache_dir, facts), encoding="utf-8") as f:
            data = json.load(f)
        if data.get("facts") != attrs.asdict(facts):
            return None
        return Decision.from_json(data["decision"])
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return None


def save_decision(cache_dir: str, facts: HostFacts, decision: Decision) -> str:
    """Cache a decision (atomically: concurrent sandboxes may probe at once); return the file."""
    path = _cache_file(cache_dir, facts)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"facts": attrs.asdict(facts), "decided": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "decision": decision.to_json()}, f, indent=1)
    os.replace(tmp, path)
    return path


def summary(facts: HostFacts) -> List[str]:
    """Lines describing the host for ``--check``."""
    return [f"host kernel: {facts.kernel}", f"UML binary: {facts.uml}", f"CPU: {facts.cpu}",
            f"CPU flags digest: {facts.cpu_flags}", f"check programs digest: {facts.tools}"]
