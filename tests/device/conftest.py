"""Device tests: every test here needs a real sg device (the sandbox provides one)."""

import pytest


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
