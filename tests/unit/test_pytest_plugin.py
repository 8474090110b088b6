"""The pytest plugin outside the sandbox: no device is ever picked implicitly,
and what cannot be honoured fails instead of passing silently."""

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def outside_the_sandbox(monkeypatch):
    for name in ("SGPY_SANDBOX", "CI"):
        monkeypatch.delenv(name, raising=False)


def test_no_device_is_picked_implicitly(pytester):
    pytester.makepyfile("def test_it(sg_device):\n    raise AssertionError(sg_device)\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no device to test*--sgpy-device PATH|URL*"])


def test_under_ci_a_device_test_without_a_device_fails(pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile("def test_it(sg_device):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*device tests may not be skipped*"])


def test_devices_named_on_the_command_line_are_the_only_ones(pytester):
    pytester.makepyfile(
        "def test_it(sg_device, sg_devices):\n"
        "    assert sg_device == '/dev/sg7'\n"
        "    assert sg_devices == ['/dev/sg7', 'iscsi://127.0.0.1/iqn.2000-01.x:t/1']\n")
    result = pytester.runpytest("--sgpy-device", "/dev/sg7", "--sgpy-device",
                                "iscsi://127.0.0.1/iqn.2000-01.x:t/1", "--sgpy-device", "/dev/sg7")
    result.assert_outcomes(passed=1)


def test_devices_from_the_ini_file(pytester):
    pytester.makeini("[pytest]\nsgpy_devices = /dev/sg3 /dev/sg4\n")
    pytester.makepyfile("def test_it(sg_devices):\n    assert sg_devices == ['/dev/sg3', '/dev/sg4']\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_scsi_debug_marker_outside_the_sandbox_is_an_error(pytester):
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.scsi_debug(ndelay=50000)\n"
        "def test_it(sg_device):\n    pass\n")
    result = pytester.runpytest("--sgpy-device", "/dev/sg7")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.scsi_debug needs scsi_debug, which only the sandbox provides*"])


def test_the_scsi_debug_fixture_outside_the_sandbox_is_an_error(pytester):
    pytester.makepyfile("def test_it(scsi_debug):\n    scsi_debug.set(every_nth=1)\n")
    result = pytester.runpytest("--sgpy-device", "/dev/sg7")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the scsi_debug fixture needs scsi_debug*"])
