"""The sandbox's second backend: a real x86-64 kernel under QEMU (``--kernel qemu``).

User-Mode Linux makes every system call hundreds of times slower than a
native kernel, which is right for behaviour tests and wrong for measuring
speed.  This backend boots Debian's own ``linux-image-amd64`` kernel in
``qemu-system-x86_64 -accel tcg`` (software emulation: it needs no KVM) and
otherwise behaves like the UML backend: the same scsi_debug devices, COMMAND
run as the guest's root in the caller's directory with the caller's
environment, its standard output and error streamed back separately, and its
exit status returned.

How the guest is put together:

* a small initramfs (cached under ``~/.cache/sgpy``, keyed by the kernel
  version) holds ``busybox`` (package ``busybox-static``), the virtio and 9p
  modules, and an ``/init`` script;
* the host's ``/`` is exported read-only over virtio-9p (``-virtfs ...,
  readonly=on,multidevs=remap``: without ``multidevs=remap`` inodes of
  different host file systems, ``/proc`` and ``/sys`` among them, collide);
* ``/init`` mounts it on ``/mnt``, loads the SCSI modules and scsi_debug from
  the host's ``/lib/modules/VERSION`` (the same package), puts fresh ``/proc``,
  ``/sys``, ``/dev`` and tmpfs ``/tmp``, ``/run``, ``/dev/shm`` over it, and
  runs the per-run script (written on the host, read through 9p) in
  ``chroot /mnt``;
* three serial ports carry the kernel console, COMMAND's standard output and
  its standard error to three host pipes; ``/init`` writes the exit status on
  the console and powers the machine off.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shlex
import shutil
import stat
import struct
import sys
import tempfile
from typing import IO, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from sgpy.sandbox import guest_env as _base_guest_env
from sgpy.sandbox import (
    EXIT_MARK,
    FAIL_MARK,
    DEFAULT_SCSI_DEBUG,
    SandboxError,
    cache_dir,
    expected_devices,
    isatty,
    read_modules_dep,
    run_guest,
    format_params,
    module_load_order,
    parse_params,
)

__all__ = ["QemuKernel", "find_qemu", "run", "build_initramfs", "INSTALL_HINT"]


#: What provides each piece, for the message when one is missing.
INSTALL_HINT = "install them with: sudo apt-get install qemu-system-x86 linux-image-amd64 busybox-static"

#: Modules the initramfs carries: enough to mount the host's root over 9p.
_BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
#: Modules loaded from the mounted root, as in the UML backend.
#: ``crct10dif_generic`` and ``crc64_rocksoft_generic`` provide the crypto
#: algorithms ``crc-t10dif`` and ``t10-pi`` ask for at load time.
_SCSI_MODULES = ("scsi_common", "scsi_mod", "crct10dif_generic", "crc_t10dif", "crc64_rocksoft_generic",
                 "sg", "sd_mod")
_OPTIONAL = frozenset({"crct10dif_generic", "crc64_rocksoft_generic", "sd_mod"})

_MOUNT_TAG = "sgpyroot"


class QemuKernel:
    """The pieces of the QEMU guest found on the host."""

    __slots__ = ("qemu", "kernel", "version", "moddir", "busybox")

    def __init__(self, qemu: str, kernel: str, version: str, moddir: str, busybox: str) -> None:
        self.qemu = qemu
        self.kernel = kernel
        self.version = version
        self.moddir = moddir
        self.busybox = busybox

    def __repr__(self) -> str:
        return f"QemuKernel({self.kernel!r}, qemu={self.qemu!r})"


# ---------------------------------------------------------------------------
# host-side discovery


def _is_static_elf(path: str) -> bool:
    """True when ``path`` is an ELF executable without a program interpreter (PT_INTERP)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP: dynamically linked
            return False
    return True


def _find_busybox() -> Optional[str]:
    for p in ("/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", shutil.which("busybox") or ""):
        if p and os.access(p, os.X_OK) and _is_static_elf(p):
            return p
    return None


def _version_key(v: str) -> Tuple:
    return tuple(int(x) if x.isdigit() else x for x in re.split(r"[.-]", v))


def _find_kernel(boot: str = "/boot", modules: str = "/lib/modules") -> Optional[Tuple[str, str, str]]:
    """``(vmlinuz path, version, modules dir)`` of the newest kernel that has its modules."""
    found = []
    try:
        names = os.listdir(boot)
    except OSError:
        names = []
    for name in names:
        if not name.startswith("vmlinuz-"):
            continue
        version = name[len("vmlinuz-"):]
        moddir = os.path.join(modules, version)
        if os.path.exists(os.path.join(moddir, "modules.dep")):
            found.append((version, os.path.join(boot, name), moddir))
    if not found:
        return None
    found.sort(key=lambda t: _version_key(t[0]))
    version, kernel, moddir = found[-1]
    return kernel, version, moddir


def find_qemu() -> QemuKernel:
    """Find QEMU, a Debian kernel with its modules, and a static busybox.

    Raises :class:`SandboxError` naming the apt packages that are missing.
    """
    missing = []
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        missing.append("qemu-system-x86_64 (package qemu-system-x86)")
    k = _find_kernel()
    if k is None:
        missing.append("a kernel in /boot with its modules in /lib/modules (package linux-image-amd64)")
    busybox = _find_busybox()
    if busybox is None:
        missing.append("a static busybox (package busybox-static)")
    if missing:
        raise SandboxError("the QEMU sandbox needs " + ", ".join(missing) + "; " + INSTALL_HINT)
    assert qemu is not None and k is not None and busybox is not None  # for type checkers; checked above
    kernel, version, moddir = k
    if not os.access(kernel, os.R_OK):
        raise SandboxError(f"{kernel} is not readable by this user; make it readable "
                           f"(sudo chmod 0644 {kernel}) or run as root")
    return QemuKernel(qemu, kernel, version, moddir, busybox)


# ---------------------------------------------------------------------------
# the initramfs


class _Cpio:
    """A writer of the kernel's initramfs format: cpio "newc" (SVR4 without CRC)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: Tuple[int, int] = (0, 0)) -> None:
        raw = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0]
        self.ino += 1
        head = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.out.write(head + raw)
        self.out.write(b"\0" * (-(len(head) + len(raw)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def _init_script(boot_modules: Sequence[str], scsi_modules: Sequence[str]) -> str:
    """The initramfs's ``/init`` (busybox sh): mount the host's root and run the per-run script."""
    q = shlex.quote
    lines = [
        "#!/bin/busybox sh",
        "# Generated by sgpy.sandbox.qemu: the init process of the QEMU guest.",
        "export PATH=/bin",
        f"fail() {{ echo \"{FAIL_MARK} $*\" > /dev/console; poweroff -f; exit 1; }}",
        "mount -t proc proc /proc || fail 'mount /proc'",
        "mount -t sysfs sysfs /sys || fail 'mount /sys'",
        "mount -t devtmpfs devtmpfs /dev || fail 'mount /dev'",
    ]
    for name in boot_modules:
        lines.append(f"insmod /lib/modules/{q(name)} || fail {q('insmod ' + name)}")
    lines += [
        "mkdir -p /lower /rw",
        "i=0",
        f"until mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 {_MOUNT_TAG} /lower;"
        " do",
        "  i=$((i+1)); [ $i -lt 50 ] || fail 'mount the host root over 9p'; sleep 0.1",
        "done",
        # Writes land in guest memory and vanish at power-off: the host's
        # files are never changed.
        "mount -t tmpfs -o mode=0755 tmpfs /rw || fail 'mount tmpfs'",
        "mkdir -p /rw/upper /rw/work",
        "mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /mnt"
        " || fail 'mount the overlay root'",
        "m=/mnt",
        # The per-run script's settings (modules dir, scsi_debug parameters).
        '[ -n "$sgpy_run" ] && [ -r "$m$sgpy_run.env" ] || fail "no run script ($sgpy_run)"',
        '. "$m$sgpy_run.env"',
    ]
    for rel in scsi_modules:
        lines.append(f'insmod "$m$SGPY_MODDIR/{rel}" || fail "insmod {os.path.basename(rel)}"')
    lines += [
        'insmod "$m$SGPY_SCSI_DEBUG_KO" $SGPY_SCSI_DEBUG_ARGS || fail "insmod scsi_debug $SGPY_SCSI_DEBUG_ARGS"',
        "i=0",
        'while [ $(ls /sys/class/scsi_generic 2>/dev/null | wc -l) -lt "$SGPY_EXPECTED" ] && [ $i -lt 400 ]; do',
        "  sleep 0.05; i=$((i+1))",
        "done",
        "for d in /sys/class/scsi_generic/* /sys/block/sd*; do",
        "  [ -e \"$d/dev\" ] || continue",
        "  n=/dev/$(basename \"$d\"); [ -e \"$n\" ] && continue",
        "  t=c; case \"$d\" in /sys/block/*) t=b;; esac",
        "  mknod \"$n\" $t $(tr ':' ' ' < \"$d/dev\")",
        "done",
        "mount --move /proc $m/proc || fail 'move /proc'",
        "mount --move /sys $m/sys || fail 'move /sys'",
        "mount --move /dev $m/dev || fail 'move /dev'",
        "mkdir -p $m/dev/pts $m/dev/shm",
        "mount -t devpts devpts $m/dev/pts",
        "mount -t tmpfs tmpfs $m/dev/shm || fail 'mount /dev/shm'",
        "mount -t tmpfs -o mode=0755 tmpfs $m/run",
        'cp "$m$sgpy_run" $m/dev/shm/sgpy-run || fail "copy the run script"',
        "stty -F $m/dev/ttyS1 raw -echo 2>/dev/null",
        "stty -F $m/dev/ttyS2 raw -echo 2>/dev/null",
        'if [ "$SGPY_TTY_OUT" = 1 ]; then',
        "  chroot $m /bin/sh /dev/shm/sgpy-run < /dev/null > $m/dev/ttyS1 2> $m/dev/ttyS2",
        "  rc=$?",
        "else",
        # The caller's output is not a terminal: give COMMAND pipes, so that it
        # behaves as on the host (buffering, no colours).
        "  mkfifo $m/dev/shm/sgpy-out $m/dev/shm/sgpy-err || fail mkfifo",
        "  cat $m/dev/shm/sgpy-out > $m/dev/ttyS1 & cat $m/dev/shm/sgpy-err > $m/dev/ttyS2 &",
        "  chroot $m /bin/sh /dev/shm/sgpy-run < /dev/null > $m/dev/shm/sgpy-out 2> $m/dev/shm/sgpy-err",
        "  rc=$?",
        "  wait",
        "fi",
        f"echo \"{EXIT_MARK} $rc\" > /dev/console",
        "poweroff -f",
        "",
    ]
    return "\n".join(lines)


def _boot_module_paths(moddir: str) -> List[str]:
    return module_load_order(moddir, _BOOT_MODULES)


def _scsi_module_paths(moddir: str) -> List[str]:
    """Paths (relative to ``moddir``) of the SCSI modules and their dependencies, in load order."""
    paths, _ = read_modules_dep(moddir)
    wanted = [m for m in _SCSI_MODULES if m.replace("-", "_") in paths or m not in _OPTIONAL]
    return [os.path.relpath(p, moddir) for p in module_load_order(moddir, wanted)]


def build_initramfs(k: QemuKernel) -> str:
    """Build (once per kernel version and generator) the guest's initramfs; return its path."""
    boot = _boot_module_paths(k.moddir)
    scsi = _scsi_module_paths(k.moddir)
    init = _init_script([os.path.basename(p) for p in boot], scsi)
    h = hashlib.sha256(init.encode())
    st = os.stat(k.busybox)
    h.update(f"{k.busybox}:{st.st_size}:{st.st_mtime_ns}".encode())
    for p in boot:
        h.update(f"{p}:{os.path.getsize(p)}".encode())
    out = os.path.join(cache_dir(), f"initramfs-{k.version}-{h.hexdigest()[:12]}.cpio.gz")
    if os.path.exists(out):
        return out
    c = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "lib", "lib/modules"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    with open(k.busybox, "rb") as f:
        c.file("bin/busybox", f.read())
    for applet in ("sh", "mount", "insmod", "sleep", "ls", "wc", "mknod", "tr", "basename", "mkdir", "cp",
                   "stty", "chroot", "mkfifo", "cat", "poweroff"):
        c.symlink(f"bin/{applet}", "busybox")
    for p in boot:
        with open(p, "rb") as f:
            c.file(f"lib/modules/{os.path.basename(p)}", f.read(), 0o644)
    c.file("init", init.encode())
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=6))
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------
# the per-run script


def _run_env(k: QemuKernel, params: Mapping[str, str], tty_out: bool) -> str:
    """Settings ``/init`` sources before loading the SCSI modules."""
    paths, _ = read_modules_dep(k.moddir)
    if "scsi_debug" not in paths:
        raise SandboxError(f"scsi_debug.ko not found in {k.moddir}; {INSTALL_HINT}")
    q = shlex.quote
    ko = os.path.join(k.moddir, paths["scsi_debug"])
    return "\n".join([
        f"SGPY_MODDIR={q(k.moddir)}",
        f"SGPY_SCSI_DEBUG_KO={q(ko)}",
        f"SGPY_SCSI_DEBUG_ARGS={q(format_params(params))}",
        f"SGPY_EXPECTED={expected_devices(params)}",
        f"SGPY_TTY_OUT={1 if tty_out else 0}",
        "",
    ])


def _run_script(command: Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    """What runs inside ``chroot``: the caller's environment and directory, then COMMAND."""
    q = shlex.quote
    lines = ["# Generated by sgpy.sandbox.qemu: COMMAND, inside the guest."]
    for k, v in env.items():
        lines.append(f"export {k}={q(v)}")
    lines.append(f"cd {q(cwd)} || exit 125")
    lines.append("exec " + " ".join(q(c) for c in command))
    lines.append("")
    return "\n".join(lines)


def _guest_env(env: Optional[Mapping[str, str]], params: Mapping[str, str], k: QemuKernel) -> Dict[str, str]:
    paths, _ = read_modules_dep(k.moddir)
    ko = os.path.join(k.moddir, paths.get("scsi_debug", "scsi_debug.ko"))
    return _base_guest_env(env, params, k.moddir, ko, kind="qemu")


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
    cpus: int = 1,
) -> int:
    """Boot the QEMU guest, run ``command`` inside it, return its exit status.

    The arguments mean what they mean for :func:`sgpy.sandbox.run`; ``cpus``
    is the guest's number of virtual CPUs.  The host's ``/`` is read-only in
    the guest; ``/tmp``, ``/run``, ``/var/tmp`` and ``/dev/shm`` are fresh
    tmpfs mounts.
    """
    if not command:
        raise SandboxError("no COMMAND given: usage is python -m sgpy.sandbox --kernel qemu [options] -- COMMAND")
    k = find_qemu()
    params = dict(DEFAULT_SCSI_DEBUG) if scsi_debug is None else parse_params(scsi_debug)
    initrd = build_initramfs(k)
    cwd = os.path.abspath(cwd or os.getcwd())
    out_stream = stdout if stdout is not None else sys.stdout.buffer
    err_stream = stderr if stderr is not None else sys.stderr.buffer

    with tempfile.TemporaryDirectory(prefix="sgpy-qemu-") as tmp:
        os.chmod(tmp, 0o755)
        script = os.path.join(tmp, "run")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_run_script(command, cwd, _guest_env(env, params, k)))
        with open(script + ".env", "w", encoding="utf-8") as f:
            f.write(_run_env(k, params, isatty(out_stream)))

        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, console
        (out_r, out_w), (err_r, err_w), (con_r, con_w) = pipes
        argv = [
            k.qemu,
            "-accel", "tcg",
            "-m", mem,
            "-smp", str(max(1, cpus)),
            "-nodefaults",
            "-no-user-config",
            "-display", "none",
            "-no-reboot",
            "-kernel", k.kernel,
            "-initrd", initrd,
            "-append", f"console=ttyS0 quiet panic=-1 rdinit=/init sgpy_run={script}",
            "-chardev", f"file,id=con,path=/dev/fd/{con_w}",
            "-chardev", f"file,id=out,path=/dev/fd/{out_w}",
            "-chardev", f"file,id=err,path=/dev/fd/{err_w}",
            "-serial", "chardev:con",
            "-serial", "chardev:out",
            "-serial", "chardev:err",
            "-virtfs", f"local,path=/,mount_tag={_MOUNT_TAG},security_model=none,readonly=on,multidevs=remap",
        ]
        argv += shlex.split(os.environ.get("SGPY_QEMU_ARGS", ""))
        return run_guest(argv, pipes, None, command, timeout, out_stream, err_stream, console,
                          "sgpy sandbox (qemu)")
