"""A real-kernel sg sandbox: User-Mode Linux with scsi_debug devices.

``python -m sgpy.sandbox [options] -- COMMAND ARGS...`` boots Debian's
User-Mode Linux kernel (package ``user-mode-linux``) as an ordinary process,
with the host's ``/`` as its root file system (hostfs), loads the SCSI
midlayer, ``sg``, ``sd_mod`` and ``scsi_debug``, and runs COMMAND as root
inside it, in the caller's working directory and with the caller's
environment.  COMMAND therefore sees real ``/dev/sgN`` nodes served by the
kernel's sg driver, and sgpy's venv, sources and tests exactly as on the host.
COMMAND's standard output and error are streamed to the caller's; the
sandbox exits with COMMAND's exit status.

The same is available as :func:`run`.  No privileges are needed: UML runs
as the calling user (inside the guest, COMMAND is root of the guest only).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from sgpy.errors import SgError
from sgpy.sandbox import host

__all__ = [
    "DEFAULT_SCSI_DEBUG",
    "SandboxError",
    "SandboxTimeout",
    "run",
    "main",
    "parse_params",
    "expected_devices",
    "guest_env",
    "format_params",
    "module_load_order",
    "find_uml",
    "EXIT_TIMEOUT",
    "EXIT_SANDBOX_FAILED",
    "host_decision",
    "probe_uml",
    "check",
    "STDIN_TTY",
]

#: scsi_debug parameters used when the caller names none: two 64 MiB disks
#: that complete every command at once (``delay=0``: inside ``write()``).
DEFAULT_SCSI_DEBUG: Dict[str, str] = {"delay": "0", "dev_size_mb": "64", "num_tgts": "2"}

#: Exit status when COMMAND outlived the timeout (as coreutils ``timeout``).
EXIT_TIMEOUT = 124
#: Exit status when the sandbox itself failed (boot, modules, packages).
EXIT_SANDBOX_FAILED = 125

#: ``run(stdin=STDIN_TTY)``: COMMAND reads the caller's terminal (an interactive session).
STDIN_TTY = "tty"

EXIT_MARK = "SGPY-SANDBOX-EXIT"
FAIL_MARK = "SGPY-SANDBOX-FAILED"

#: Modules the guest needs, by name; their dependencies come from
#: ``modules.dep``.  ``crc64_rocksoft_generic`` provides the crypto
#: algorithm ``t10-pi`` (needed by ``sd_mod``) asks for at load time.
_GUEST_MODULES = ("scsi_common", "scsi_mod", "crc64_rocksoft_generic", "sg", "sd_mod")

_UML_MODULES = "/usr/lib/uml/modules"
_INSTALL_HINT = "install them with: sudo apt-get install user-mode-linux kmod"


class SandboxError(SgError):
    """The sandbox could not be set up or the guest failed to boot."""


class SandboxTimeout(SandboxError):
    """COMMAND did not finish in time; the guest was killed."""


# ---------------------------------------------------------------------------
# parameters


def parse_params(text: Union[str, Sequence[str], Mapping[str, object], None]) -> Dict[str, str]:
    """Turn ``"delay=0 num_tgts=2"`` (or a list of ``k=v``, or a mapping) into a dict."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return {str(k): _param_value(v) for k, v in text.items()}
    words = text.split() if isinstance(text, str) else list(text)
    out: Dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SandboxError(f"scsi_debug parameter {word!r} is not of the form name=value")
        out[key] = value
    return out


def _param_value(v: object) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def format_params(params: Mapping[str, str]) -> str:
    """The ``k=v k=v`` form ``insmod`` takes."""
    return " ".join(f"{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------------------
# host-side discovery


def find_uml() -> Tuple[str, str]:
    """Return ``(linux.uml path, modules directory)`` or raise SandboxError.

    The message says which Debian packages provide what is missing.
    """
    missing = []
    uml = shutil.which("linux.uml") or ("/usr/bin/linux.uml" if os.path.exists("/usr/bin/linux.uml") else None)
    if uml is None:
        missing.append("linux.uml (package user-mode-linux)")
    moddir = None
    if os.path.isdir(_UML_MODULES):
        versions = sorted(os.listdir(_UML_MODULES))
        if versions:
            moddir = os.path.join(_UML_MODULES, versions[-1])
    if moddir is None and uml is not None:
        missing.append(f"UML kernel modules in {_UML_MODULES} (package user-mode-linux)")
    if _find_tool("insmod") is None:
        missing.append("insmod (package kmod)")
    if missing:
        raise SandboxError("the sg sandbox needs " + ", ".join(missing) + "; " + _INSTALL_HINT)
    assert uml is not None and moddir is not None  # for type checkers; checked above
    return uml, moddir


def _find_tool(name: str) -> Optional[str]:
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def read_modules_dep(moddir: str) -> Tuple[Dict[str, str], Dict[str, List[str]]]:
    """Map module name -> path and path -> dependency paths from modules.dep."""
    paths: Dict[str, str] = {}
    deps: Dict[str, List[str]] = {}
    with open(os.path.join(moddir, "modules.dep"), encoding="utf-8") as f:
        for line in f:
            path, _, rest = line.partition(":")
            path = path.strip()
            if not path:
                continue
            name = os.path.basename(path).split(".ko")[0].replace("-", "_")
            paths[name] = path
            deps[path] = rest.split()
    return paths, deps


def _read_softdeps(moddir: str) -> Dict[str, List[str]]:
    """Module name -> modules to load first (``softdep X pre: ...``)."""
    out: Dict[str, List[str]] = {}
    try:
        with open(os.path.join(moddir, "modules.softdep"), encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if len(words) < 3 or words[0] != "softdep":
                    continue
                name = words[1].replace("-", "_")
                pre: List[str] = []
                mode = None
                for w in words[2:]:
                    if w in ("pre:", "post:"):
                        mode = w
                    elif mode == "pre:":
                        pre.append(w.replace("-", "_"))
                out[name] = pre
    except OSError:
        pass
    return out


def module_load_order(moddir: str, wanted: Sequence[str]) -> List[str]:
    """Absolute paths of ``wanted`` modules and their dependencies, in load order.

    Missing optional modules (``crc64_rocksoft_generic`` on kernels that
    build it in) are skipped; a missing required one raises SandboxError.
    """
    paths, deps = read_modules_dep(moddir)
    soft = _read_softdeps(moddir)
    order: List[str] = []
    seen = set()

    def visit_path(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        name = os.path.basename(path).split(".ko")[0].replace("-", "_")
        for pre in soft.get(name, ()):
            if pre in paths:
                visit_path(paths[pre])
        for dep in deps.get(path, ()):
            visit_path(dep)
        order.append(os.path.join(moddir, path))

    for name in wanted:
        key = name.replace("-", "_")
        if key not in paths:
            if name == "crc64_rocksoft_generic":
                continue
            raise SandboxError(f"kernel module {name} not found in {moddir}; {_INSTALL_HINT}")
        visit_path(paths[key])
    return order


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "sgpy")
    try:
        os.makedirs(path, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    path = os.path.join(tempfile.gettempdir(), f"sgpy-cache-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path


def _build_tool(name: str, *, shared: bool) -> str:
    """Compile ``NAME.c`` beside this file once, cached by content hash; return the output's path.

    ``umlfix.c`` becomes an LD_PRELOAD library for UML, ``regcheck.c`` the
    guest's register check; both need only a C compiler.
    """
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.c")
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = os.path.join(cache_dir(), f"{name}-{digest}{'.so' if shared else ''}")
    if os.path.exists(out):
        return out
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SandboxError(f"the sg sandbox needs a C compiler (cc) to build its helper {name}.c; "
                           "install it with: sudo apt-get install gcc")
    tmp = f"{out}.{os.getpid()}.tmp"
    flags = ["-shared", "-fPIC"] if shared else []
    proc = subprocess.run([cc, *flags, "-O2", "-o", tmp, src, *(["-ldl"] if shared else [])],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SandboxError(f"building the sandbox's helper {name}.c failed:\n" + proc.stdout.decode(errors="replace"))
    os.replace(tmp, out)
    return out


def _tool_sources() -> List[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "umlfix.c"), os.path.join(here, "regcheck.c")]


# ---------------------------------------------------------------------------
# the guest's init script


def _init_script(
    *,
    command: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    modules: Sequence[str],
    scsi_debug_ko: str,
    params: Mapping[str, str],
    expected: int,
    tty_out: bool = False,
    stdin: Optional[str] = None,
    tty_size: Optional[Tuple[int, int]] = None,
) -> str:
    """The guest's init script.  ``stdin``: None (``/dev/null``), :data:`STDIN_TTY`
    (the caller's terminal, on the guest's tty1) or a host file's path."""
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# Generated by sgpy.sandbox: the init process of a User-Mode Linux guest.",
        'if [ -z "${SGPY_SANDBOX_INIT:-}" ]; then',
        "  exec /usr/bin/env -i SGPY_SANDBOX_INIT=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh \"$0\"",
        "fi",
        f"fail() {{ echo \"{FAIL_MARK} $*\" > /dev/console; sync; poweroff -f; exit 1; }}",
        "mount -t proc proc /proc || fail 'mount /proc'",
        "mount -t sysfs sysfs /sys || fail 'mount /sys'",
        "[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev || fail 'mount /dev'",
        "mkdir -p /dev/pts /dev/shm",
        "mount -t devpts devpts /dev/pts 2>/dev/null",
        "mount -t tmpfs tmpfs /dev/shm 2>/dev/null",
    ]
    for path in modules:
        lines.append(f"insmod {q(path)} || fail {q('insmod ' + os.path.basename(path))}")
    lines.append(
        f"insmod {q(scsi_debug_ko)} {' '.join(q(f'{k}={v}') for k, v in params.items())}"
        f" || fail {q('insmod scsi_debug ' + format_params(params))}"
    )
    lines += [
        # scsi_debug scans its targets during insmod; sd attaches afterwards.
        "i=0",
        f"while [ $(ls /sys/class/scsi_generic 2>/dev/null | wc -l) -lt {expected} ] && [ $i -lt 200 ]; do",
        "  sleep 0.05; i=$((i+1))",
        "done",
        # devtmpfs normally creates the nodes; make any that are missing.
        "for d in /sys/class/scsi_generic/* /sys/block/sd*; do",
        "  [ -e \"$d/dev\" ] || continue",
        "  n=/dev/$(basename \"$d\"); [ -e \"$n\" ] && continue",
        "  t=c; case \"$d\" in /sys/block/*) t=b;; esac",
        "  mknod \"$n\" $t $(tr ':' ' ' < \"$d/dev\")",
        "done",
        "stty -F /dev/tty1 raw -echo 2>/dev/null",
        "stty -F /dev/tty2 raw -echo 2>/dev/null",
    ]
    for k, v in env.items():
        lines.append(f"export {k}={q(v)}")
    lines += [
        f"cd {q(cwd)} || fail {q('cd ' + cwd)}",
    ]
    cmd = " ".join(q(c) for c in command)
    if stdin == STDIN_TTY:
        # The caller's terminal: tty1 reads its keys and writes to it.  A
        # session of its own with tty1 as controlling terminal, so that ^C
        # and job control reach COMMAND as on the host.
        rows, cols = tty_size or (24, 80)
        lines.append(f"stty -F /dev/tty1 sane rows {rows} cols {cols} 2>/dev/null")
        lines.append(f"setsid -c -w {cmd} < /dev/tty1 > /dev/tty1 2> /dev/tty1")
        lines.append("rc=$?")
    elif tty_out:
        lines.append(f"{cmd} < {q(stdin or '/dev/null')} > /dev/tty1 2> /dev/tty2")
        lines.append("rc=$?")
    else:
        # The caller's output is not a terminal: give COMMAND pipes too, so
        # that it behaves as it would on the host (no colours, buffering).
        lines += [
            "mkfifo /dev/shm/sgpy-out /dev/shm/sgpy-err || fail mkfifo",
            "cat /dev/shm/sgpy-out > /dev/tty1 & cat /dev/shm/sgpy-err > /dev/tty2 &",
            f"{cmd} < {q(stdin or '/dev/null')} > /dev/shm/sgpy-out 2> /dev/shm/sgpy-err",
            "rc=$?",
            "wait",
        ]
    lines += [
        f"echo \"{EXIT_MARK} $rc\" > /dev/console",
        "sync",
        "poweroff -f",
        "",
    ]
    return "\n".join(lines)


def expected_devices(params: Mapping[str, str]) -> int:
    def num(key: str, default: int) -> int:
        try:
            return int(params.get(key, default))
        except ValueError:
            return default

    return max(1, num("num_tgts", 1) * num("max_luns", 1) * max(1, num("add_host", 1)))


def guest_env(
    env: Optional[Mapping[str, str]],
    params: Mapping[str, str],
    moddir: str,
    ko: str,
    *,
    kind: str = "uml",
) -> Dict[str, str]:
    """COMMAND's environment in a guest: the caller's, plus what the guest side needs.

    ``SGPY_SANDBOX`` (the backend), the scsi_debug parameters and where the
    module is, for :mod:`sgpy.sandbox.guest`.
    """
    out = dict(os.environ if env is None else env)
    for key in ("LD_PRELOAD", "SGPY_SANDBOX_INIT"):
        out.pop(key, None)
    out = {key: v for key, v in out.items() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)}
    out["SGPY_SANDBOX"] = kind
    out["SGPY_SANDBOX_SCSI_DEBUG"] = format_params(params)
    out["SGPY_SANDBOX_MODULES"] = moddir
    out["SGPY_SANDBOX_SCSI_DEBUG_KO"] = ko
    return out


# ---------------------------------------------------------------------------
# running


def run(
    command: Sequence[str],
    *,
    scsi_debug: Union[str, Sequence[str], Mapping[str, object], None] = None,
    mem: str = "768M",
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    stdout: Optional[IO[bytes]] = None,
    stderr: Optional[IO[bytes]] = None,
    console: Optional[IO[bytes]] = None,
    kernel: str = "auto",
    stdin: Optional[str] = None,
) -> int:
    """Boot the sandbox, run ``command`` inside it, return its exit status.

    ``stdin``: COMMAND's standard input.  None: ``/dev/null``;
    :data:`STDIN_TTY`: this process's terminal, interactively (UML only: the
    terminal is put in raw mode for the session and restored afterwards, so
    keys, ^C and line editing reach the guest as on the host); otherwise the
    path of a host file to read.

    ``scsi_debug`` replaces :data:`DEFAULT_SCSI_DEBUG` when given (a
    ``"k=v k=v"`` string, a list or a mapping).  ``timeout`` (seconds) kills
    the guest and raises :class:`SandboxTimeout`; a guest that fails to set
    up raises :class:`SandboxError` carrying the console log.  COMMAND's
    output goes to ``stdout``/``stderr`` (binary streams; default: this
    process's), the kernel console to ``console`` (default: kept for error
    messages only).

    ``kernel``: ``"auto"`` (default) runs User-Mode Linux where a probe of
    this host (:func:`host_decision`, cached) found that it runs guest
    programs correctly, and QEMU otherwise, saying why on ``stderr``;
    ``"uml"`` insists on UML (SandboxError when it cannot be trusted here);
    ``"qemu"`` boots Debian's x86-64 kernel under QEMU (see
    :mod:`sgpy.sandbox.qemu`): slower to boot, but with system calls at the
    speed of an emulated CPU rather than UML's, which is what benchmarks need.
    """
    if kernel not in ("auto", "uml", "qemu"):
        raise SandboxError(f"unknown sandbox kernel {kernel!r}: choose 'auto', 'uml' or 'qemu'")
    if not command:
        raise SandboxError("no COMMAND given: usage is python -m sgpy.sandbox [options] -- COMMAND ARGS...")
    if stdin == STDIN_TTY and not os.isatty(0):
        raise SandboxError("stdin=STDIN_TTY needs a terminal on file descriptor 0")
    helper = False
    if kernel != "qemu":
        decision = host_decision(console=console)
        if decision.backend == "uml":
            helper = decision.helper
        elif kernel == "uml" or decision.backend == "none":
            raise SandboxError(decision.reason)
        else:
            err = stderr if stderr is not None else sys.stderr.buffer
            err.write(f"sgpy sandbox: {decision.reason}\n".encode())
            err.flush()
            kernel = "qemu"
    if kernel == "qemu":
        from sgpy.sandbox import qemu

        if stdin is not None:
            raise SandboxError("the QEMU backend runs COMMAND with /dev/null as its input; "
                               "use the UML backend for an interactive session or input")
        return qemu.run(command, scsi_debug=scsi_debug, mem=mem, timeout=timeout, cwd=cwd, env=env,
                        stdout=stdout, stderr=stderr, console=console)
    return _boot_uml(command, helper=helper, scsi_debug=scsi_debug, mem=mem, timeout=timeout, cwd=cwd,
                     env=env, stdout=stdout, stderr=stderr, console=console, stdin=stdin)


def _boot_uml(
    command: Sequence[str],
    *,
    helper: bool,
    scsi_debug: Union[str, Sequence[str], Mapping[str, object], None],
    mem: str,
    timeout: Optional[float],
    cwd: Optional[str],
    env: Optional[Mapping[str, str]],
    stdout: Optional[IO[bytes]],
    stderr: Optional[IO[bytes]],
    console: Optional[IO[bytes]],
    stdin: Optional[str] = None,
) -> int:
    """Boot User-Mode Linux (with the umlfix.c helper preloaded when ``helper``) and run COMMAND."""
    uml, moddir = find_uml()
    params = dict(DEFAULT_SCSI_DEBUG) if scsi_debug is None else parse_params(scsi_debug)
    modules = module_load_order(moddir, _GUEST_MODULES)
    paths, _ = read_modules_dep(moddir)
    if "scsi_debug" not in paths:
        raise SandboxError(f"scsi_debug.ko not found in {moddir}; {_INSTALL_HINT}")
    ko = os.path.join(moddir, paths["scsi_debug"])
    preload = _build_tool("umlfix", shared=True) if helper else None
    cwd = os.path.abspath(cwd or os.getcwd())
    out_stream = stdout if stdout is not None else sys.stdout.buffer
    err_stream = stderr if stderr is not None else sys.stderr.buffer

    with tempfile.TemporaryDirectory(prefix="sgpy-sandbox-") as tmp:
        init = os.path.join(tmp, "init")
        with open(init, "w", encoding="utf-8") as f:
            f.write(_init_script(
                command=command, cwd=cwd, env=guest_env(env, params, moddir, ko),
                modules=modules, scsi_debug_ko=ko, params=params, expected=expected_devices(params),
                tty_out=isatty(out_stream), stdin=None if stdin is None else
                (STDIN_TTY if stdin == STDIN_TTY else os.path.abspath(stdin)),
                tty_size=_tty_size() if stdin == STDIN_TTY else None,
            ))
        os.chmod(init, 0o755)
        # The guest can read the host's / (hostfs) but must be able to read
        # the script; keep it private to the user otherwise.
        os.chmod(tmp, 0o755)

        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, console
        (out_r, out_w), (err_r, err_w), (con_r, con_w) = pipes
        uml_dir = os.path.join(tmp, "uml")
        os.mkdir(uml_dir)
        argv = [
            uml,
            f"mem={mem}",
            "rootfstype=hostfs",
            "rootflags=/",
            "rw",
            f"init={init}",
            f"uml_dir={uml_dir}",
            f"umid=sgpy{os.getpid()}",
            "con=null",
            "ssl=null",
            f"con0=null,fd:{con_w}",
            f"con1=fd:0,fd:{out_w}" if stdin == STDIN_TTY else f"con1=null,fd:{out_w}",
            f"con2=null,fd:{err_w}",
        ]
        uml_env = dict(os.environ)
        uml_env.pop("LD_PRELOAD", None)
        if preload is not None:
            uml_env["LD_PRELOAD"] = preload
        shm = "/dev/shm"
        if os.path.isdir(shm) and os.access(shm, os.W_OK):
            uml_env["TMPDIR"] = shm
        uml_env.setdefault("HOME", tmp)
        if not os.access(uml_env["HOME"], os.W_OK):
            uml_env["HOME"] = tmp
        if stdin != STDIN_TTY:
            return run_guest(argv, pipes, uml_env, command, timeout, out_stream, err_stream, console,
                              "sgpy sandbox")
        import termios
        import tty

        saved = termios.tcgetattr(0)
        try:
            tty.setraw(0)
            return run_guest(argv, pipes, uml_env, command, timeout, out_stream, err_stream, console,
                              "sgpy sandbox", inherit_stdin=True)
        finally:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _tty_size() -> Tuple[int, int]:
    size = shutil.get_terminal_size((80, 24))
    return size.lines, size.columns


# ---------------------------------------------------------------------------
# probing the host


def _check_command(python: str) -> List[str]:
    """The guest command of a probe: the register check, then the Python smoke test."""
    regcheck = _build_tool("regcheck", shared=False)
    return ["/bin/sh", "-c", f"{shlex.quote(regcheck)}; r=$?; {shlex.quote(python)} -c {shlex.quote(host.SMOKE_CODE)}"
            " || exit $?; exit $r"]


def probe_uml(path: str, *, python: Optional[str] = None, timeout: float = 120.0) -> host.Probe:
    """Boot UML one way (:data:`host.UML` or :data:`host.UML_HELPER`) and run the check in it."""
    out = io.BytesIO()
    con = io.BytesIO()
    command = _check_command(python or sys.executable)
    if path == host.UML_HELPER:
        _build_tool("umlfix", shared=True)  # a missing compiler is the caller's problem, not the host's
    status: Optional[int]
    try:
        status = _boot_uml(command, helper=path == host.UML_HELPER,
                           scsi_debug=None, mem="768M", timeout=timeout, cwd=None, env=None, stdout=out,
                           stderr=out, console=con)
    except SandboxTimeout:
        status = None
    except SandboxError:
        status = None  # the guest died: its console says why (Probe.why)
    return host.Probe(path=path, status=status, output=out.getvalue().decode(errors="replace"),
                      console=con.getvalue().decode(errors="replace")[-4000:],
                      expected_smoke=host.smoke_expected())


def _qemu_missing() -> str:
    from sgpy.sandbox import qemu

    try:
        qemu.find_qemu()
    except SandboxError as exc:
        return str(exc)
    return ""


def host_decision(*, refresh: bool = False, console: Optional[IO[bytes]] = None) -> host.Decision:
    """How the sandbox runs on this host: from the cache, or probed now.

    The first sandbox on a host (or after its kernel, CPU, UML package or
    sgpy's check programs changed) boots UML once or twice to probe it
    (a few seconds each); the decision is then cached in ``~/.cache/sgpy``.
    ``refresh`` probes again.  A line saying which path was taken and why
    goes to ``console`` when given (``--console``).
    """
    uml, _ = find_uml()
    facts = host.HostFacts.read(uml, _tool_sources())
    cache = cache_dir()
    decision = None if refresh else host.load_decision(cache, facts)
    cached = decision is not None
    if decision is None:
        probes: List[host.Probe] = []
        while True:
            path = host.next_probe(probes)
            if path is None:
                break
            probes.append(probe_uml(path))
        decision = host.decide(probes, qemu_missing=_qemu_missing())
        host.save_decision(cache, facts, decision)
    if console is not None:
        console.write(f"sgpy sandbox: path {decision.path} ({'cached' if cached else 'probed now'}): "
                      f"{decision.reason}\n".encode())
        console.flush()
    return decision


def run_guest(
    argv: Sequence[str],
    pipes: Sequence[Tuple[int, int]],
    env: Optional[Mapping[str, str]],
    command: Sequence[str],
    timeout: Optional[float],
    out_stream: IO[bytes],
    err_stream: IO[bytes],
    console: Optional[IO[bytes]],
    label: str,
    inherit_stdin: bool = False,
) -> int:
    """Start a guest (either backend), pump its three pipes, return COMMAND's exit status.

    ``pipes`` are the (read, write) pairs for COMMAND's stdout, its stderr and
    the kernel console; the guest's init writes the exit or failure mark on
    the console.  Timeout → :class:`SandboxTimeout`; no mark →
    :class:`SandboxError` with the end of the console.
    """
    (out_r, out_w), (err_r, err_w), (con_r, con_w) = pipes
    try:
        proc = subprocess.Popen(
            list(argv), stdin=None if inherit_stdin else subprocess.DEVNULL, stdout=con_w, stderr=con_w,
            pass_fds=(out_w, err_w, con_w), env=None if env is None else dict(env), start_new_session=True,
        )
    finally:
        for fd in (out_w, err_w, con_w):
            os.close(fd)
    watch = _Watch(proc.pid)
    try:
        log = _pump(proc, {out_r: out_stream, err_r: err_stream, con_r: console}, timeout)
    finally:
        watch.release()
    text = log.decode(errors="replace")
    if log.endswith(b"\0TIMEOUT"):
        raise SandboxTimeout(
            f"COMMAND {shlex.join(command)!s} did not finish within {timeout:g} s; the guest was killed.\n"
            + _tail(text[: -len("\0TIMEOUT")])
        )
    m = re.search(EXIT_MARK + r" (\d+)", text)
    if m:
        return int(m.group(1))
    failed = re.search(FAIL_MARK + r" (.*)", text)
    what = (f"the guest failed to set up: {failed.group(1).strip()}" if failed
            else "the guest stopped before COMMAND finished")
    raise SandboxError(f"{label}: {what}\n" + _tail(text))


def isatty(stream: IO[bytes]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _tail(text: str, lines: int = 40) -> str:
    rows = [r for r in text.replace("\r", "").splitlines() if r.strip()]
    return "--- kernel console (last lines) ---\n" + "\n".join(rows[-lines:])


def _pump(proc: "subprocess.Popen[bytes]", sinks: Dict[int, Optional[IO[bytes]]], timeout: Optional[float]) -> bytes:
    """Copy the guest's pipes to their sinks until it powers off; return the console log."""
    console_fd = list(sinks)[-1]
    log = bytearray()
    sel = selectors.DefaultSelector()
    for fd in sinks:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = None if timeout is None else time.monotonic() + timeout
    exited_at: Optional[float] = None
    timed_out = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if deadline is not None and now > deadline and exited_at is None:
                timed_out = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 2.0:
                break  # helpers that still hold a pipe open: stop waiting
            wait = 0.2
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - now))
            for key, _ in sel.select(wait):
                fd = key.fd
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                sink = sinks[fd]
                if fd == console_fd:
                    log += chunk
                if sink is not None:
                    sink.write(chunk)
                    sink.flush()
    except BaseException:
        _kill(proc)
        raise
    finally:
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
        sel.close()
        for fd in sinks:
            os.close(fd)
    _kill(proc)
    if timed_out:
        log += b"\0TIMEOUT"
    return bytes(log)


class _Watch:
    """Kills the guest's process group if this process dies without cleaning up.

    A caller killed by SIGKILL (or by SIGTERM, which Python does not turn
    into an exception) never reaches :func:`_kill`, and the guest (UML and
    its helper processes, or QEMU) would run on.  A small shell holds the
    read end of a pipe whose write end only this process has (O_CLOEXEC):
    when this process dies the shell reads EOF and kills the group;
    :meth:`release` says "done" first, so a normal end kills nothing.
    """

    _SCRIPT = 'if read -r line && [ "$line" = done ]; then exit 0; fi; kill -KILL "-$1" 2>/dev/null'

    def __init__(self, pgid: int) -> None:
        r, self._w = os.pipe()
        try:
            self._proc: Optional["subprocess.Popen[bytes]"] = subprocess.Popen(
                ["/bin/sh", "-c", self._SCRIPT, "sh", str(pgid)], stdin=r, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:  # no /bin/sh: the caller's own cleanup still applies
            self._proc = None
        finally:
            os.close(r)

    def release(self) -> None:
        try:
            os.write(self._w, b"done\n")
        except OSError:
            pass
        os.close(self._w)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._proc.kill()


def _kill(proc: "subprocess.Popen[bytes]") -> None:
    """Kill UML and every host process it started (one per guest process)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a stuck zombie
        pass


def check(*, kernel: str = "auto", out: Optional[IO[str]] = None) -> int:
    """``python -m sgpy.sandbox --check``: probe, decide, prove; return an exit status.

    Prints the host's facts, each probe (which way UML was booted, what the
    register check and Python printed, why it failed), the decision, and
    then boots once the chosen way and runs the checks again there.
    """
    w = out if out is not None else sys.stdout
    uml, _ = find_uml()
    facts = host.HostFacts.read(uml, _tool_sources())
    for line in host.summary(facts):
        w.write(f"  {line}\n")
    if kernel != "qemu":
        decision = host_decision(refresh=True)
        for p in decision.probes:
            w.write(f"probe {p.path}: {'ok' if p.ok else 'FAILED: ' + p.why()}\n")
            for line in p.output.splitlines():
                if line.startswith(("regcheck ", "pysmoke ")):
                    w.write(f"    {line}\n")
        w.write(f"decision: {decision.path}: {decision.reason}\n")
        if decision.backend == "none" or (kernel == "uml" and decision.backend != "uml"):
            w.write("the sandbox cannot run on this host\n")
            return EXIT_SANDBOX_FAILED
        kernel = "uml" if decision.backend == "uml" else "qemu"
    outbuf = io.BytesIO()
    status = run(_check_command(sys.executable), kernel=kernel, stdout=outbuf, stderr=outbuf, timeout=600)
    text = outbuf.getvalue().decode(errors="replace")
    expected = host.smoke_expected()
    ok = status == 0 and "regcheck result ok" in text and expected in text.splitlines()
    w.write(f"boot ({kernel}): checks {'passed' if ok else 'FAILED'} (exit status {status})\n")
    if not ok:
        w.write(text)
        w.write(f"expected Python to print: {expected}\n")
    return 0 if ok else EXIT_SANDBOX_FAILED


# ---------------------------------------------------------------------------
# command line


def _arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sgpy.sandbox",
        description="Run COMMAND as root inside a User-Mode Linux guest that has real sg devices "
        "served by scsi_debug, in this directory and with this environment.",
        epilog="Example: python -m sgpy.sandbox -p ndelay=50000 -- python -m pytest tests/device",
    )
    p.add_argument("-p", "--param", action="append", default=None, metavar="NAME=VALUE",
                   help="a scsi_debug module parameter (repeatable); replaces the default set "
                   f"{format_params(DEFAULT_SCSI_DEBUG)!r}")
    p.add_argument("--scsi-debug", default=None, metavar="'NAME=VALUE ...'",
                   help="all scsi_debug parameters as one string")
    p.add_argument("--mem", default="768M", help="guest memory (default 768M)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="kill the guest after this long (exit status 124)")
    p.add_argument("--console", action="store_true", help="also show the kernel console on stderr")
    p.add_argument("--kernel", choices=("auto", "uml", "qemu"), default="auto",
                   help="auto (default): User-Mode Linux (boots in ~3 s) where a probe of this host found it "
                   "runs guest programs correctly, else QEMU; uml: UML only; qemu: Debian's x86-64 kernel "
                   "under qemu-system-x86_64 -accel tcg (for benchmarks)")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="give COMMAND this terminal (a REPL, a shell), or, when standard input is not a "
                   "terminal, what it holds; without -i a terminal is given when both standard input and "
                   "output are terminals, else /dev/null")
    p.add_argument("--check", action="store_true",
                   help="probe this host again, print what was probed and decided, boot once the chosen "
                   "way and run the register and Python checks there; exit 0 when the sandbox works")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    return p


@contextlib.contextmanager
def _stdin_for(interactive: bool) -> Iterator[Optional[str]]:
    """COMMAND's input for the command line: a terminal, a copy of piped input, or nothing."""
    tty_in = _fd_isatty(0)
    if tty_in and (interactive or _fd_isatty(1)):
        yield STDIN_TTY
        return
    if not interactive:
        yield None
        return
    # Piped or redirected input: the guest reads a host file through hostfs,
    # so that COMMAND sees its end as on the host.
    with tempfile.NamedTemporaryFile(prefix="sgpy-sandbox-stdin-") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
        f.flush()
        os.chmod(f.name, 0o644)
        yield f.name


def _fd_isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m sgpy.sandbox``; returns the exit status."""
    args = _arg_parser().parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.check:
        try:
            return check(kernel=args.kernel, out=sys.stdout)
        except SandboxError as exc:
            print(f"sgpy sandbox: {exc}", file=sys.stderr)
            return EXIT_SANDBOX_FAILED
    if not command:
        _arg_parser().print_usage(sys.stderr)
        print("python -m sgpy.sandbox: error: no COMMAND given after --", file=sys.stderr)
        return 2
    params: Optional[Dict[str, str]] = None
    try:
        if args.scsi_debug is not None or args.param:
            params = parse_params(args.scsi_debug or "")
            params.update(parse_params(args.param or []))
        with _stdin_for(args.interactive) as stdin:
            return run(
                command, scsi_debug=params, mem=args.mem, timeout=args.timeout,
                console=sys.stderr.buffer if args.console else None, kernel=args.kernel, stdin=stdin,
            )
    except SandboxTimeout as exc:
        print(f"sgpy sandbox: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except SandboxError as exc:
        print(str(exc) if str(exc).startswith("sgpy sandbox") else f"sgpy sandbox: {exc}", file=sys.stderr)
        return EXIT_SANDBOX_FAILED
    except KeyboardInterrupt:
        return 130
