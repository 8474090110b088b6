"""Device discovery on the sandbox's scsi_debug devices."""

import glob
import os

import pytest

import sgpy
from sgpy import Channel, command
from sgpy.devices import Device, find


def test_devices_lists_the_sandbox_disks(sg_devices):
    found = sgpy.devices()
    assert [d.path for d in found] == sg_devices
    for d in found:
        assert isinstance(d, Device)
        assert d.type == 0 and d.type_name == "disk"
        assert (d.vendor, d.model) == ("Linux", "scsi_debug") and d.revision
        assert d.device_node is not None and d.device_node.startswith("/dev/sd")
        assert d.accessible and d.state == "running"
        assert os.path.basename(os.path.realpath(f"/sys/class/scsi_generic/{d.name}/device")) == d.hctl


def test_the_sysfs_strings_match_inquiry(sg_devices):
    for d in sgpy.devices():
        with Channel.from_path(d.path) as ch:
            r = ch.cmd.Inquiry().result
        assert (r.vendor, r.product, r.revision) == (d.vendor, d.model, d.revision)
        assert int(r.peripheral_device_type) == d.type


def test_find_maps_every_name_of_a_logical_unit_to_its_sg_node(sg_devices):
    for d in sgpy.devices():
        names = [d.path, d.name, d.device_node, os.path.basename(d.device_node), d.hctl, f"[{d.hctl}]"]
        bsg = f"/dev/bsg/{d.hctl}"
        if os.path.exists(bsg):
            names.append(bsg)
        for name in names:
            assert find(name) == d, name
        assert sgpy.find(d.device_node).path == d.path


def test_find_follows_symlinks(sg_devices, tmp_path):
    d = sgpy.devices()[-1]
    link = tmp_path / "by-id-disk"
    os.symlink(d.device_node, link)
    assert find(str(link)) == d


def test_find_refuses_what_is_no_scsi_device(sg_devices):
    for name in ("/dev/null", "/dev/sg-none", "7:7:7:7"):
        with pytest.raises(FileNotFoundError, match="no sg device for"):
            find(name)


def test_a_found_device_opens(sg_devices):
    d = find(sgpy.devices()[0].device_node)
    with Channel.from_path(d.path) as ch:
        assert ch.kind == "sg"
        assert ch.cmd.TestUnitReady(verify_handler=sgpy.handler.might_fail).returned
        assert ch.execute(command.Inquiry()).result.vendor == d.vendor


def test_listing_sends_no_command(sg_devices):
    before = {p: open(p).read() for p in glob.glob("/sys/class/scsi_generic/*/device/iorequest_cnt")}
    sgpy.devices()
    find(sgpy.devices()[0].device_node)
    after = {p: open(p).read() for p in before}
    assert before == after
