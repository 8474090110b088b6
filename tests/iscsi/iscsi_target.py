"""A private tgtd (the Linux SCSI target framework's userspace daemon) on loopback.

Each :class:`Tgtd` is one ``tgtd -f`` process with its own iSCSI portal
(127.0.0.1, a free port) and its own management port (``-C``: tgtadm talks
to it through ``/var/run/tgtd/socket.<port>``), so runs never meet another
tgtd, the system's included.  Targets and file-backed LUNs are made with
``tgtadm`` in a private directory.  tgtd may ignore SIGTERM while it serves,
so :meth:`Tgtd.kill` ends it by PID with SIGKILL and removes its socket
files.  Used by the iSCSI tests and by ``benchmarks/bench_iscsi.py``.

tgtd needs root (for ``/var/run/tgtd``); as another user it runs through
``sudo -n`` when that works without a password.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from typing import Dict, List, Optional, Sequence

__all__ = ["Tgtd", "missing", "IQN_PREFIX"]

IQN_PREFIX = "iqn.2024-01.org.sgpy.test"
_SOCKET_DIR = "/var/run/tgtd"


def _sudo() -> List[str]:
    if os.geteuid() == 0:
        return []
    return ["sudo", "-n"]


def missing() -> Optional[str]:
    """Why a tgtd cannot be started here (None when it can)."""
    for tool in ("tgtd", "tgtadm"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed (Debian package tgt: apt-get install tgt)"
    try:
        from sgpy import iscsi
    except ImportError as exc:  # pragma: no cover - depends on the install
        return f"sgpy.iscsi cannot be imported: {exc}"
    if not iscsi.available():
        return ("sgpy was built without its iSCSI extension (install libiscsi-dev, then reinstall sgpy: "
                "scripts/setup)")
    if os.geteuid() != 0:
        ok = subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
        if not ok:
            return "tgtd needs root: run as root, or allow password-less sudo"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TgtdError(RuntimeError):
    """tgtd or tgtadm failed; the message carries their output."""


class Tgtd:
    """One private tgtd; see the module docstring."""

    def __init__(self, workdir: str, *, port: Optional[int] = None) -> None:
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = port or _free_port()
        self.control_port = 0
        self.pid: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._log_path = os.path.join(workdir, "tgtd.log")
        self._next_tid = 1
        self.targets: Dict[str, int] = {}
        self._script: List[Sequence[str]] = []
        self.accounts: Dict[str, str] = {}

    # -- life ----------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> "Tgtd":
        """Start tgtd and wait until both its portal and its management port answer."""
        if os.environ.get("SGPY_SANDBOX"):
            # The sandbox guest boots with its loopback interface down.
            subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True)
        last = ""
        for _attempt in range(5):
            self.control_port = self._pick_control_port()
            pidfile = os.path.join(self.workdir, "tgtd.pid")
            try:
                os.unlink(pidfile)
            except FileNotFoundError:
                pass
            log = open(self._log_path, "ab")
            cmd = _sudo() + [_tool("tgtd"), "-f", "--iscsi", f"portal=127.0.0.1:{self.port}",
                             "-C", str(self.control_port), "-p", pidfile]
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          start_new_session=True)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                if self._ready(pidfile):
                    return self
                time.sleep(0.05)
            last = self.log()
            self.kill()
            self.port = _free_port()
        raise TgtdError(f"tgtd did not start; its log:\n{last}")

    def _pick_control_port(self) -> int:
        rng = random.Random(os.getpid() ^ time.monotonic_ns())
        for _ in range(100):
            n = rng.randrange(10000, 32000)  # tgtd takes -C values up to 32767
            if not os.path.exists(os.path.join(_SOCKET_DIR, f"socket.{n}")):
                return n
        raise TgtdError(f"no free tgtd management port (too many sockets in {_SOCKET_DIR}?)")

    def _ready(self, pidfile: str) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                pass
        except OSError:
            return False
        r = subprocess.run(_sudo() + [_tool("tgtadm"), "-C", str(self.control_port), "--lld", "iscsi",
                                      "--mode", "target", "--op", "show"], capture_output=True)
        if r.returncode != 0:
            return False
        self.pid = self._proc.pid if not _sudo() else self._read_pid(pidfile)
        return self.pid is not None

    @staticmethod
    def _read_pid(pidfile: str) -> Optional[int]:
        try:
            with open(pidfile, encoding="ascii") as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _signal(self, sig: int) -> None:
        if self.pid is None:
            return
        if _sudo():
            subprocess.run(_sudo() + ["kill", f"-{int(sig)}", str(self.pid)], capture_output=True)
        else:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """End tgtd by PID with SIGKILL (it may ignore SIGTERM) and remove its socket files."""
        if self.pid is not None:
            self._signal(signal.SIGKILL)
        proc = self._proc
        if proc is not None:
            if proc.poll() is None and not _sudo():
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self.pid = None
        self._proc = None
        if self.control_port:
            for suffix in ("", ".lock"):
                path = os.path.join(_SOCKET_DIR, f"socket.{self.control_port}{suffix}")
                try:
                    os.unlink(path)
                except OSError:
                    if _sudo():
                        subprocess.run(_sudo() + ["rm", "-f", path], capture_output=True)

    def restart(self) -> "Tgtd":
        """Kill, then start again on the same portal, with the same targets, LUNs and accounts."""
        self.kill()
        return self.revive()

    def revive(self) -> "Tgtd":
        """Start a killed tgtd again with the configuration it had (same portal, files, accounts)."""
        script = list(self._script)
        self._script = []
        self.start()
        for args in script:
            self.tgtadm(*args)
        return self

    def suspend(self) -> None:
        """SIGSTOP: the target stops answering but keeps its connections."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`suspend`."""
        self._signal(signal.SIGCONT)

    def log(self) -> str:
        """What tgtd wrote so far."""
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self) -> "Tgtd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    # -- configuration ---------------------------------------------------------

    def tgtadm(self, *args: str) -> str:
        """Run ``tgtadm -C <port> --lld iscsi ARGS``; TgtdError with its output on failure."""
        cmd = _sudo() + [_tool("tgtadm"), "-C", str(self.control_port), "--lld", "iscsi", *args]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise TgtdError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
        if "--op" in args and args[args.index("--op") + 1] != "show":
            self._script.append(args)
        return r.stdout

    def add_target(self, name: str, *, luns: Sequence[int] = (1,), size_mb: int = 16,
                   initiators: Sequence[str] = (), allow_all: bool = True) -> str:
        """Create target ``<IQN_PREFIX>:<name>`` with file-backed LUNs; return its IQN.

        tgtd always adds LUN 0 (a controller); ``luns`` are the disks.  With
        ``initiators`` only those initiator names may log in.
        """
        iqn = name if name.startswith("iqn.") else f"{IQN_PREFIX}:{name}"
        tid = self._next_tid
        self._next_tid += 1
        self.tgtadm("--mode", "target", "--op", "new", "--tid", str(tid), "--targetname", iqn)
        for lun in luns:
            path = os.path.join(self.workdir, f"t{tid}-lun{lun}.img")
            with open(path, "wb") as f:
                f.truncate(size_mb * 1024 * 1024)
            self.tgtadm("--mode", "logicalunit", "--op", "new", "--tid", str(tid), "--lun", str(lun),
                        "--backing-store", path)
        if initiators:
            for name_ in initiators:
                self.tgtadm("--mode", "target", "--op", "bind", "--tid", str(tid), "--initiator-name", name_)
        elif allow_all:
            self.tgtadm("--mode", "target", "--op", "bind", "--tid", str(tid), "--initiator-address", "ALL")
        self.targets[iqn] = tid
        return iqn

    def add_chap(self, iqn: str, user: str, password: str, *, outgoing: bool = False) -> None:
        """Require CHAP user/password for ``iqn`` (``outgoing``: the target's own, for mutual CHAP)."""
        known = self.accounts.get(user)
        if known is None:
            self.tgtadm("--mode", "account", "--op", "new", "--user", user, "--password", password)
            self.accounts[user] = password
        elif known != password:
            raise TgtdError(f"account {user!r} exists with another password (accounts are per tgtd)")
        args = ["--mode", "account", "--op", "bind", "--tid", str(self.targets[iqn]), "--user", user]
        if outgoing:
            args.append("--outgoing")
        self.tgtadm(*args)

    def url(self, iqn: str, lun: int = 1, *, credentials: str = "") -> str:
        """``iscsi://[credentials@]127.0.0.1:<port>/<iqn>/<lun>``."""
        cred = f"{credentials}@" if credentials else ""
        return f"iscsi://{cred}127.0.0.1:{self.port}/{iqn}/{lun}"

    @property
    def portal(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"
