"""Device tests: every test here needs a real sg device (the sandbox provides one)."""

import os
import time

import pytest

from sgpy.sandbox import guest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/device/" in str(item.fspath):
            item.add_marker(pytest.mark.device)


def _device_fds():
    """This process's fds open on an sg or sd node (what keeps scsi_debug from being reloaded)."""
    import os

    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("/dev/sg", "/dev/sd", "/dev/bsg")):
            out[int(fd)] = target
    return out


@pytest.fixture(scope="module", autouse=True)
def _no_device_left_open(request):
    """Every module closes what it opened: an fd left on a device keeps scsi_debug from being
    reloaded for the next parameter set, and is a leak the engine promises not to have."""
    before = _device_fds()
    yield
    import gc
    import time

    gc.collect()
    deadline = time.monotonic() + 5
    left = {fd: t for fd, t in _device_fds().items() if fd not in before}
    while left and time.monotonic() < deadline:  # a reactor thread may still be closing
        time.sleep(0.05)
        left = {fd: t for fd, t in _device_fds().items() if fd not in before}
    assert not left, f"{request.module.__name__} left device fds open: {left}"


def _hctl(path):
    """``H:C:T:L`` of an sg node, from its sysfs device link."""
    name = os.path.basename(path)
    return os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{name}/device"))


class Unplugger:
    """Slows scsi_debug down and deletes devices; puts both back afterwards."""

    def __init__(self, scsi_debug):
        self.scsi_debug = scsi_debug
        self.hosts = set()

    def slow_down(self, ndelay):
        # delay=0 saved first, so that restoring ends with delay=0: putting
        # ndelay back to 0 alone would leave delay at its default, 1 jiffy
        # (ndelay_store in scsi_debug.c).
        self.scsi_debug.set(delay=0)
        self.scsi_debug.set(ndelay=ndelay)

    def delete(self, path):
        h = _hctl(path)
        self.hosts.add(h.split(":")[0])
        with open(f"/sys/class/scsi_device/{h}/device/delete", "w", encoding="ascii") as f:
            f.write("1")

    def restore(self):
        self.scsi_debug.restore()
        for host in sorted(self.hosts):
            with open(f"/sys/class/scsi_host/host{host}/scan", "w", encoding="ascii") as f:
                f.write("- - -")
        want = set(self.scsi_debug.devices)
        deadline = time.monotonic() + 10
        while len(guest.sg_devices()) < len(want):
            if time.monotonic() > deadline:
                raise AssertionError(f"deleted devices did not come back: {sorted(want)} vs {guest.sg_devices()}")
            time.sleep(0.02)
        if set(guest.sg_devices()) != want:
            # sg frees a deleted device's number only when its last file is
            # released, in a work queue (sg.c, sg_remove_sfp): a rescan that
            # comes first numbers the device anew.  Reload to renumber.
            params = guest.current_params()
            guest.unload()
            guest.load(params)
        assert set(guest.sg_devices()) == want and all(os.path.exists(p) for p in want)


@pytest.fixture
def unplug(scsi_debug):
    """Delete devices through sysfs (and slow scsi_debug down); everything is put back afterwards."""
    u = Unplugger(scsi_debug)
    yield u
    u.restore()
