"""Device discovery against a fake sysfs tree (no device needed)."""

import os
import sys

import pytest

import sgpy
from sgpy import devices as devices_mod
from sgpy.devices import Device, _hctl_of_devno, devices, find

# (sg name, H:C:T:L, type, vendor, model, rev, upper-level subdirectory, its node names)
UNITS = [
    ("sg0", "0:0:0:0", 0, "Linux   ", "scsi_debug      ", "0191", "block", ["sda"]),
    ("sg1", "0:0:1:0", 0, "Linux", "scsi_debug", "0191", "block", ["sdb"]),
    ("sg2", "1:0:2:0", 1, "HP", "Ultrium 6-SCSI", "35GD", "scsi_tape", ["nst0", "nst0a", "st0", "st0a", "st0l"]),
    ("sg10", "2:0:0:0", 5, "QEMU", "QEMU DVD-ROM", "2.5+", "block", ["sr0"]),
    ("sg3", "3:0:0:0", 0x0D, "LSI", "SAS2X36", "0717", None, []),
    ("sg4", "4:0:0:0", 0x08, "IBM", "03584L32", "F030", "scsi_changer", ["sch0"]),
]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def tree(tmp_path):
    sysfs = tmp_path / "sys"
    dev = tmp_path / "dev"
    dev.mkdir()
    for name, hctl, ptype, vendor, model, rev, sub, nodes in UNITS:
        host = hctl.split(":")[0]
        target = ":".join(hctl.split(":")[:3])
        lu = sysfs / "devices" / "pseudo_0" / f"adapter{host}" / f"host{host}" / f"target{target}" / hctl
        for attr, value in (("type", f"{ptype}\n"), ("vendor", vendor + "\n"), ("model", model + "\n"),
                            ("rev", rev + "\n"), ("state", "running\n")):
            _write(str(lu / attr), value)
        sg = lu / "scsi_generic" / name
        sg.mkdir(parents=True)
        os.symlink(f"../../../{hctl}", sg / "device")
        (sysfs / "class" / "scsi_generic").mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(sg, sysfs / "class" / "scsi_generic"), sysfs / "class" / "scsi_generic" / name)
        for n in nodes:
            (lu / sub / n).mkdir(parents=True)
            os.symlink(f"../../../{hctl}", lu / sub / n / "device")
        (dev / name).write_bytes(b"")
        (dev / name).chmod(0o600)
    # device numbers: sda, its partition sda1, sg0 and a bsg node
    lu0 = sysfs / "devices" / "pseudo_0" / "adapter0" / "host0" / "target0:0:0" / "0:0:0:0"
    (lu0 / "block" / "sda" / "sda1").mkdir()
    _write(str(lu0 / "block" / "sda" / "sda1" / "partition"), "1\n")
    (lu0 / "bsg" / "0:0:0:0").mkdir(parents=True)
    numbers = (("block", "8:0", lu0 / "block" / "sda"), ("block", "8:1", lu0 / "block" / "sda" / "sda1"),
               ("char", "21:0", lu0 / "scsi_generic" / "sg0"), ("char", "250:0", lu0 / "bsg" / "0:0:0:0"))
    for kind, devno, target in numbers:
        (sysfs / "dev" / kind).mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(target, sysfs / "dev" / kind), sysfs / "dev" / kind / devno)
    return str(sysfs), str(dev)


def test_devices_lists_every_sg_node_in_number_order(tree):
    sysfs, dev = tree
    found = devices(sysfs=sysfs, dev=dev)
    assert [d.name for d in found] == ["sg0", "sg1", "sg2", "sg3", "sg4", "sg10"]
    assert all(isinstance(d, Device) for d in found)


@pytest.mark.parametrize(
    "name, hctl, type_name, vendor, model, revision, node",
    [
        ("sg0", "0:0:0:0", "disk", "Linux", "scsi_debug", "0191", "sda"),
        ("sg1", "0:0:1:0", "disk", "Linux", "scsi_debug", "0191", "sdb"),
        ("sg2", "1:0:2:0", "tape", "HP", "Ultrium 6-SCSI", "35GD", "st0"),
        ("sg10", "2:0:0:0", "cd_dvd", "QEMU", "QEMU DVD-ROM", "2.5+", "sr0"),
        ("sg3", "3:0:0:0", "enclosure", "LSI", "SAS2X36", "0717", None),
        ("sg4", "4:0:0:0", "medium_changer", "IBM", "03584L32", "F030", "sch0"),
    ],
)
def test_device_fields(tree, name, hctl, type_name, vendor, model, revision, node):
    sysfs, dev = tree
    d = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}[name]
    assert d.path == os.path.join(dev, name)
    assert d.hctl == hctl
    assert (d.host, d.channel, d.target, d.lun) == tuple(int(x) for x in hctl.split(":"))
    assert d.type_name == type_name
    assert (d.vendor, d.model, d.revision) == (vendor, model, revision)
    assert d.device_node == (None if node is None else os.path.join(dev, node))
    assert d.state == "running"
    assert d.accessible is True
    assert os.fspath(d) == d.path == str(d)


def test_to_dict_keys_are_the_documented_ones(tree):
    sysfs, dev = tree
    d = devices(sysfs=sysfs, dev=dev)[0].to_dict()
    assert list(d) == ["path", "name", "hctl", "host", "channel", "target", "lun", "type", "type_name", "vendor",
                       "model", "revision", "device_node", "accessible", "state", "size_bytes",
                       "logical_block_size", "serial", "wwn", "transport", "transport_address", "host_driver",
                       "queue_depth"]
    assert d["hctl"] == "0:0:0:0" and d["type"] == 0 and d["type_name"] == "disk"


def test_accessible_asks_for_read_and_write_access(tree, monkeypatch):
    sysfs, dev = tree
    asked = []

    def access(path, mode):
        asked.append((os.path.basename(path), mode))
        return not path.endswith("sg1")

    monkeypatch.setattr(devices_mod.os, "access", access)
    by_name = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}
    assert by_name["sg1"].accessible is False and by_name["sg0"].accessible is True
    assert ("sg0", os.R_OK | os.W_OK) in asked


@pytest.mark.skipif(os.geteuid() == 0, reason="root may open anything")
def test_accessible_follows_the_node_permissions(tree):
    sysfs, dev = tree
    os.chmod(os.path.join(dev, "sg1"), 0o400)
    by_name = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}
    assert by_name["sg1"].accessible is False and by_name["sg0"].accessible is True


def test_a_missing_node_is_not_accessible(tree):
    sysfs, dev = tree
    os.remove(os.path.join(dev, "sg1"))
    by_name = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}
    assert by_name["sg1"].accessible is False


def test_no_sg_driver_means_no_devices(tmp_path):
    assert devices(sysfs=str(tmp_path), dev=str(tmp_path)) == []


def test_unknown_type_code_and_missing_attributes(tree):
    sysfs, dev = tree
    lu = os.path.realpath(os.path.join(sysfs, "class", "scsi_generic", "sg3", "device"))
    _write(os.path.join(lu, "type"), "27\n")
    os.remove(os.path.join(lu, "vendor"))
    d = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}["sg3"]
    assert d.type == 27 and d.type_name == "type_1bh" and d.vendor == ""


@pytest.mark.parametrize(
    "query, expected",
    [
        ("sg0", "sg0"),
        ("sg10", "sg10"),
        ("sda", "sg0"),
        ("sdb", "sg1"),
        ("st0", "sg2"),
        ("sr0", "sg10"),
        ("sch0", "sg4"),
        ("0:0:1:0", "sg1"),
        ("[1:0:2:0]", "sg2"),
        ("DEV/sg1", "sg1"),
    ],
)
def test_find(tree, query, expected):
    sysfs, dev = tree
    assert find(query.replace("DEV", dev), sysfs=sysfs, dev=dev).name == expected


@pytest.mark.parametrize("query", ["sdz", "9:9:9:9", "/nonexistent/sdq", "st7"])
def test_find_nothing(tree, query):
    sysfs, dev = tree
    with pytest.raises(FileNotFoundError, match="no sg device for"):
        find(query, sysfs=sysfs, dev=dev)


@pytest.mark.parametrize(
    "kind, major, minor, hctl",
    [
        ("block", 8, 0, (0, 0, 0, 0)),
        ("block", 8, 1, (0, 0, 0, 0)),  # a partition leads to its disk
        ("char", 21, 0, (0, 0, 0, 0)),
        ("char", 250, 0, (0, 0, 0, 0)),  # bsg
        ("block", 8, 32, None),
        ("char", 1, 3, None),
    ],
)
def test_device_numbers_lead_to_the_logical_unit(tree, kind, major, minor, hctl):
    sysfs, _ = tree
    assert _hctl_of_devno(sysfs, kind, major, minor) == hctl


def test_the_module_is_callable_and_the_lazy_names_agree(monkeypatch, tree):
    sysfs, dev = tree
    monkeypatch.setattr(devices_mod, "SYSFS", sysfs)
    assert callable(sgpy.devices)
    assert sgpy.devices is sys.modules["sgpy.devices"]
    assert sgpy.devices(sysfs=sysfs, dev=dev) == devices(sysfs=sysfs, dev=dev)
    assert sgpy.find is find
    assert devices_mod.list_devices is devices



# -- what lsscsi -s --wwn -i -t adds: size, serial, WWN, transport ----------------------------------------------


def _lu_dir(sysfs, name):
    return os.path.realpath(os.path.join(sysfs, "class", "scsi_generic", name, "device"))


def _vpd80(serial: bytes) -> bytes:
    return bytes([0, 0x80, 0, len(serial)]) + serial


def _vpd83(*designators: bytes) -> bytes:
    body = b"".join(designators)
    return bytes([0, 0x83, len(body) >> 8, len(body) & 0xFF]) + body


NAA_LU = bytes([1, 0x03, 0, 8]) + bytes.fromhex("5000c500a1b2c3d4")
T10_LU = bytes([2, 0x01, 0, 16]) + b"LIO-ORG disk0001"
NAA_PORT = bytes([0x61, 0x93, 0, 8]) + bytes.fromhex("5000c500a1b2c3d5")


def test_size_block_size_serial_and_wwn_come_from_sysfs(tree):
    sysfs, dev = tree
    lu = _lu_dir(sysfs, "sg0")
    _write(os.path.join(lu, "block", "sda", "size"), "131072\n")  # 512-byte sectors, whatever the block size
    _write(os.path.join(lu, "block", "sda", "queue", "logical_block_size"), "4096\n")
    with open(os.path.join(lu, "vpd_pg80"), "wb") as f:
        f.write(_vpd80(b"  ZA1B2C3D  "))
    _write(os.path.join(lu, "wwid"), "naa.5000c500a1b2c3d4\n")
    _write(os.path.join(lu, "queue_depth"), "32\n")
    d = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}["sg0"]
    assert (d.size_bytes, d.logical_block_size) == (131072 * 512, 4096)
    assert d.serial == "ZA1B2C3D" and d.wwn == "naa.5000c500a1b2c3d4" and d.queue_depth == 32
    assert d.to_dict()["size_bytes"] == 67108864


def test_without_wwid_the_wwn_is_decoded_from_vpd_page_83h(tree):
    sysfs, dev = tree
    lu = _lu_dir(sysfs, "sg1")
    with open(os.path.join(lu, "vpd_pg83"), "wb") as f:
        f.write(_vpd83(T10_LU, NAA_PORT, NAA_LU))
    assert {d.name: d for d in devices(sysfs=sysfs, dev=dev)}["sg1"].wwn == "naa.5000c500a1b2c3d4"
    with open(os.path.join(lu, "vpd_pg83"), "wb") as f:
        f.write(_vpd83(T10_LU, NAA_PORT))
    assert {d.name: d for d in devices(sysfs=sysfs, dev=dev)}["sg1"].wwn == "t10.LIO-ORG disk0001"


@pytest.mark.parametrize("pg80, pg83", [(b"\x00\x80\x00", b"\x00\x83\x00\x10\x01\x03\x00\x08"),
                                        (_vpd80(b"    "), _vpd83(NAA_PORT)), (b"", b"")])
def test_unreadable_or_empty_vpd_pages_give_none(tree, pg80, pg83):
    sysfs, dev = tree
    lu = _lu_dir(sysfs, "sg1")
    for name, data in (("vpd_pg80", pg80), ("vpd_pg83", pg83)):
        with open(os.path.join(lu, name), "wb") as f:
            f.write(data)
    d = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}["sg1"]
    assert d.serial is None and d.wwn is None


def test_what_sysfs_does_not_say_is_none(tree):
    sysfs, dev = tree
    d = {d.name: d for d in devices(sysfs=sysfs, dev=dev)}["sg3"]  # an enclosure: no block device, no VPD
    assert (d.size_bytes, d.logical_block_size, d.serial, d.wwn, d.host_driver, d.queue_depth) == (None,) * 6
    assert d.transport == "pseudo" and d.transport_address is None  # the tree's units hang off pseudo_0


def _unit(sysfs, dev, where, hctl, name="sg0", classes=(), driver=None):
    """One logical unit at /sys/devices/WHERE/H:C:T:L with an sg node; ``classes``: files (path, text) under
    /sys/class; ``driver``: its host's proc_name."""
    lu = os.path.join(sysfs, "devices", where, hctl)
    for attr, value in (("type", "0"), ("vendor", "X"), ("model", "Y"), ("rev", "1")):
        _write(os.path.join(lu, attr), value + "\n")
    sg = os.path.join(lu, "scsi_generic", name)
    os.makedirs(sg)
    os.symlink(os.path.relpath(lu, sg), os.path.join(sg, "device"))
    os.makedirs(os.path.join(sysfs, "class", "scsi_generic"), exist_ok=True)
    os.symlink(os.path.relpath(sg, os.path.join(sysfs, "class", "scsi_generic")),
               os.path.join(sysfs, "class", "scsi_generic", name))
    host = "host" + hctl.split(":")[0]
    if driver is not None:
        _write(os.path.join(sysfs, "class", "scsi_host", host, "proc_name"), driver + "\n")
    for path, text in classes:
        if text is None:
            os.makedirs(os.path.join(sysfs, "class", path), exist_ok=True)
        else:
            _write(os.path.join(sysfs, "class", path), text + "\n")
    os.makedirs(dev, exist_ok=True)
    return devices(sysfs=sysfs, dev=dev)[0]


TRANSPORTS = [
    ("sas", "pci0000:00/0000:00:01.0/host2/port-2:0/end_device-2:0/target2:0:0", "2:0:0:0",
     [("sas_host/host2", None), ("sas_device/end_device-2:0/sas_address", "0x5000c500a1b2c3d5")], "mpt3sas",
     ("sas", "0x5000c500a1b2c3d5")),
    ("fc", "pci0000:00/0000:00:02.0/host3/rport-3:0-0/target3:0:1", "3:0:1:0",
     [("fc_host/host3/symbolic_name", "QLE2562 FW:v8.07.00"), ("fc_transport/target3:0:1/port_name",
      "0x21000024ff3dd4a0"), ("fc_transport/target3:0:1/port_id", "0x010200")], "qla2xxx",
     ("fc", "0x21000024ff3dd4a0,0x010200")),
    ("fcoe", "pci0000:00/0000:00:02.0/host3/rport-3:0-0/target3:0:1", "3:0:1:0",
     [("fc_host/host3/symbolic_name", "fcoe v0.1 over eth2"), ("fc_transport/target3:0:1/port_name",
      "0x21000024ff3dd4a0"), ("fc_transport/target3:0:1/port_id", "0x010200")], "fcoe", ("fcoe",
                                                                                          "0x21000024ff3dd4a0,0x010200")),
    ("iscsi", "platform/host4/session7/target4:0:0", "4:0:0:1",
     [("iscsi_host/host4", None), ("iscsi_session/session7/targetname", "iqn.2026-11.org.example:t1"),
      ("iscsi_session/session7/tpgt", "1")], "iscsi_tcp", ("iscsi", "iqn.2026-11.org.example:t1,t,0x1")),
    ("spi", "pci0000:00/0000:00:03.0/host5/target5:0:3", "5:0:3:0", [("spi_host/host5", None)], "sym53c8xx",
     ("spi", "3")),
    ("usb", "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0", "6:0:0:0", [], "usb-storage",
     ("usb", "1-1:1.0")),
    ("sata", "pci0000:00/0000:00:17.0/ata1/host7/target7:0:0", "7:0:0:0", [], "ahci", ("sata", None)),
    ("ata", "pci0000:00/0000:00:01.1/ata2/host8/target8:0:0", "8:0:0:0", [], "pata_via", ("ata", None)),
    ("virtio", "pci0000:00/0000:00:04.0/virtio1/host9/target9:0:0", "9:0:0:0", [], "virtio_scsi",
     ("virtio", None)),
    ("pseudo", "pseudo_0/adapter0/host0/target0:0:0", "0:0:0:0", [], "scsi_debug", ("pseudo", None)),
    ("unknown", "platform/host10/target10:0:0", "10:0:0:0", [], "mystery", (None, None)),
]


@pytest.mark.parametrize("where, hctl, classes, driver, expected", [t[1:] for t in TRANSPORTS],
                         ids=[t[0] for t in TRANSPORTS])
def test_transport_as_lsscsi_finds_it(tmp_path, where, hctl, classes, driver, expected):
    d = _unit(str(tmp_path / "sys"), str(tmp_path / "dev"), where, hctl, classes=classes, driver=driver)
    assert (d.transport, d.transport_address) == expected
    assert d.host_driver == driver


def test_hosts_from_scsi_host_with_their_transport_class(tmp_path):
    """``hosts()`` reads /sys/class/scsi_host and the transport classes, as lsscsi -H -t does."""
    from sgpy.devices import hosts

    sysfs = tmp_path / "sys"
    layout = {  # host -> (proc_name, sysfs parent path, transport class and its attributes)
        0: ("scsi_debug", "pseudo_0/adapter0", None),
        3: ("qla2xxx", "pci0000:00/0000:00:03.0", ("fc_host", {"port_name": "0x21000024ff3dd1a0",
                                                               "port_id": "0x010200", "symbolic_name": "QLE2562"})),
        7: ("iscsi_tcp", "platform/host7", ("iscsi_host", {"initiatorname": "iqn.1993-08.org.debian:01:abc"})),
        11: ("mpt3sas", "pci0000:00/0000:00:04.0", ("sas_host", {})),
        12: ("usb-storage", "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0", None),
        13: ("ahci", "pci0000:00/0000:00:1f.2/ata1", None),
        20: ("mystery", "platform/x", None),
    }
    for number, (driver, parent, klass) in layout.items():
        hostdir = sysfs / "devices" / parent / f"host{number}" / "scsi_host" / f"host{number}"
        for attr, value in (("proc_name", driver), ("state", "running"), ("can_queue", "64"),
                            ("cmd_per_lun", "3"), ("sg_tablesize", "128")):
            _write(str(hostdir / attr), value + "\n")
        if driver == "mpt3sas":
            _write(str(hostdir / "host_sas_address"), "0x500605b0012345670\n")
        (sysfs / "class" / "scsi_host").mkdir(parents=True, exist_ok=True)
        os.symlink(hostdir, sysfs / "class" / "scsi_host" / f"host{number}")
        if klass is not None:
            cdir = sysfs / "class" / klass[0] / f"host{number}"
            cdir.mkdir(parents=True)
            for attr, value in klass[1].items():
                _write(str(cdir / attr), value + "\n")
    (sysfs / "class" / "scsi_host" / "not-a-host").mkdir()
    found = hosts(sysfs=str(sysfs))
    assert [h.host for h in found] == [0, 3, 7, 11, 12, 13, 20]
    got = {h.host: (h.driver, h.transport, h.transport_address) for h in found}
    assert got == {0: ("scsi_debug", "pseudo", None), 3: ("qla2xxx", "fc", "0x21000024ff3dd1a0,0x010200"),
                   7: ("iscsi_tcp", "iscsi", "iqn.1993-08.org.debian:01:abc"),
                   11: ("mpt3sas", "sas", "0x500605b0012345670"), 12: ("usb-storage", "usb", "1-1:1.0"),
                   13: ("ahci", "sata", None), 20: ("mystery", None, None)}
    h = found[0]
    assert (h.name, h.state, h.can_queue, h.cmd_per_lun, h.sg_tablesize, h.devices) == \
        ("host0", "running", 64, 3, 128, 0)
    assert h.to_dict()["driver"] == "scsi_debug" and str(h) == "host0"
    assert hosts(sysfs=str(tmp_path / "none")) == []


def test_hosts_count_the_sg_devices_behind_each(tree):
    from sgpy.devices import hosts

    sysfs, _ = tree
    for number in (0, 1, 2, 3, 4):
        hostdir = os.path.join(sysfs, "devices", "pseudo_0", f"adapter{number}", f"host{number}", "scsi_host",
                               f"host{number}")
        _write(os.path.join(hostdir, "proc_name"), "scsi_debug\n")
        os.makedirs(os.path.join(sysfs, "class", "scsi_host"), exist_ok=True)
        os.symlink(hostdir, os.path.join(sysfs, "class", "scsi_host", f"host{number}"))
    assert {h.host: h.devices for h in hosts(sysfs=sysfs)} == {0: 2, 1: 1, 2: 1, 3: 1, 4: 1}
