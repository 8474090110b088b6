"""The QEMU backend of the sandbox, driven from the host: exit status, output, timeout."""

import io
import subprocess
import sys
import time

import os

import pytest

from sgpy import sandbox
from sgpy.sandbox import qemu

try:
    qemu.find_qemu()
    HAVE_QEMU = True
except sandbox.SandboxError:  # pragma: no cover - depends on the machine
    HAVE_QEMU = False

# Under CI a missing package fails these tests instead of skipping them.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
needs_qemu = pytest.mark.skipif(not HAVE_QEMU and not IN_CI, reason="qemu-system-x86, linux-image-amd64 or busybox-static "
                                "is not installed")


def test_missing_packages_are_named(monkeypatch):
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    monkeypatch.setattr(qemu, "_find_kernel", lambda: None)
    monkeypatch.setattr(qemu, "_find_busybox", lambda: None)
    with pytest.raises(sandbox.SandboxError) as info:
        qemu.find_qemu()
    msg = str(info.value)
    for pkg in ("qemu-system-x86", "linux-image-amd64", "busybox-static"):
        assert pkg in msg
    assert "apt-get install" in msg


def test_unknown_kernel_is_refused():
    with pytest.raises(sandbox.SandboxError, match="uml.*qemu"):
        sandbox.run(["true"], kernel="xen")


def test_newest_kernel_with_modules_is_chosen(tmp_path):
    boot, mods = tmp_path / "boot", tmp_path / "modules"
    boot.mkdir()
    for v in ("6.1.0-9-amd64", "6.1.0-10-amd64", "6.12.0-1-amd64"):
        (boot / f"vmlinuz-{v}").write_bytes(b"")
    for v in ("6.1.0-9-amd64", "6.1.0-10-amd64"):  # 6.12 has no modules
        (mods / v).mkdir(parents=True)
        (mods / v / "modules.dep").write_text("")
    kernel, version, moddir = qemu._find_kernel(str(boot), str(mods))
    assert version == "6.1.0-10-amd64"
    assert kernel == str(boot / "vmlinuz-6.1.0-10-amd64") and moddir == str(mods / version)


def test_static_elf_detection():
    assert not qemu._is_static_elf(sys.executable) or "static" in sys.executable
    assert not qemu._is_static_elf(__file__)


def test_cpio_newc_layout():
    c = qemu._Cpio()
    c.dir("bin")
    c.file("init", b"#!/bin/sh\n")
    c.symlink("bin/sh", "busybox")
    data = c.finish()
    # newc: "070701", 13 eight-digit hex fields, the name, padding to 4 bytes.
    assert data.startswith(b"070701")
    assert data.count(b"070701") == 4
    assert b"TRAILER!!!\0" in data
    head = data[:110]
    namesize = int(head[94:102], 16)
    assert data[110:110 + namesize] == b"bin\0"
    assert len(data) % 4 == 0


@needs_qemu
def test_exit_status_and_output_come_back():
    out, err = io.BytesIO(), io.BytesIO()
    rc = sandbox.run(["sh", "-c", "echo hello; echo oops >&2; ls /dev/sg0; echo $SGPY_SANDBOX; exit 7"],
                     kernel="qemu", stdout=out, stderr=err, timeout=120)
    assert rc == 7
    assert out.getvalue().splitlines() == [b"hello", b"/dev/sg0", b"qemu"]
    assert err.getvalue() == b"oops\n"


@needs_qemu
def test_callers_directory_environment_and_a_writable_root_that_leaves_the_host_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("SGPY_TEST_MARKER", "it's here")
    out = io.BytesIO()
    rc = sandbox.run(["sh", "-c", 'pwd; echo "$SGPY_TEST_MARKER"; id -u; echo "$SGPY_SANDBOX_SCSI_DEBUG"; '
                      "echo x > written && cat written; ls /dev/sg*"],
                     kernel="qemu", cwd=str(tmp_path), stdout=out, scsi_debug="delay=0 num_tgts=3", timeout=120)
    assert rc == 0
    assert out.getvalue().decode().splitlines() == [
        str(tmp_path), "it's here", "0", "delay=0 num_tgts=3", "x", "/dev/sg0", "/dev/sg1", "/dev/sg2"]
    assert not (tmp_path / "written").exists()


@needs_qemu
def test_timeout_on_the_command_line_exits_124():
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sgpy.sandbox", "--kernel", "qemu", "--timeout", "15", "--",
                           "sleep", "600"], stderr=subprocess.PIPE)
    assert proc.returncode == sandbox.EXIT_TIMEOUT
    assert b"did not finish within 15 s" in proc.stderr
    assert time.monotonic() - start < 60
