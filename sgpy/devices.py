"""Device discovery: the sg devices of this machine, read from sysfs.

``sgpy.devices()`` lists every sg node with its SCSI address (H:C:T:L), the
peripheral device type, the vendor, model and revision the kernel read at
scan time, the device node of the upper-level driver bound to the same
logical unit (``/dev/sdX``, ``/dev/stN``, ``/dev/srN``...) and whether the
current user may open it; and, as lsscsi shows them, the medium's size, the
serial number, the logical unit's name (WWN) and the transport, from the
attributes and the VPD pages the kernel read when it found the device.  ``sgpy.find("/dev/sdb")`` maps any of those
nodes (or an H:C:T:L, or a symlink such as ``/dev/disk/by-id/...``) to the
sg device.

Nothing here sends a command: everything comes from sysfs
(``/sys/class/scsi_generic``, ``/sys/class/scsi_device/H:C:T:L/device``
with its ``wwid``, ``vpd_pg80`` and ``vpd_pg83``, ``block/*/size``, the
transport classes, ``/sys/dev/{block,char}``), so listing is
cheap, needs no permission on the devices and works while they are busy.
Importing the module touches nothing at all.

The module itself is callable (``sgpy.devices()`` is
``sgpy.devices.devices()``), so ``import sgpy.devices`` and the lazy
attribute ``sgpy.devices`` mean the same thing.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import types
from typing import Any, Dict, List, Optional, Tuple

import attrs

from sgpy.constants import PeripheralDeviceType

__all__ = ["Device", "Host", "devices", "hosts", "list_devices", "find", "SYSFS", "DEV", "read_sysfs_int"]

#: Where sysfs and device nodes live; every function takes others (for tests).
SYSFS = "/sys"
DEV = "/dev"

_HCTL = re.compile(r"^\[?(\d+):(\d+):(\d+):(\d+)\]?$")
# Upper-level drivers and how their class directories name the node of a
# logical unit: sd/sr/sd-zbc under "block", st under "scsi_tape" (st0, plus
# the nst0/st0l/... variants), ch under "scsi_changer" (sch0).
_UPPER = (("block", re.compile(r"^[a-z]+\d*[a-z]*$")), ("scsi_tape", re.compile(r"^st\d+$")),
          ("scsi_changer", re.compile(r"^sch\d+$")))


@attrs.frozen
class Device:
    """One sg device, as sysfs describes it.

    ``path`` is the sg node (``/dev/sg0``) and ``name`` its kernel name;
    ``host``/``channel``/``target``/``lun`` the SCSI address; ``type`` the
    peripheral device type code (SPC-5 table 141) and :attr:`type_name` its
    name; ``vendor``/``model``/``revision`` the INQUIRY strings the kernel
    keeps; ``device_node`` the node of the upper-level driver bound to the
    same logical unit, or None; ``accessible`` whether this process may open
    ``path`` for reading and writing (what a channel needs); ``state`` the
    kernel's device state (``running``, ``offline``...).

    What lsscsi ``-s``, ``--wwn``, ``-i`` and ``-t`` add, each None where
    sysfs does not say: ``size_bytes`` the medium's capacity in bytes
    (the upper-level block device's, so None for an sg node with no disk
    or CD driver bound); ``logical_block_size`` its logical block size;
    ``serial`` the product serial number (VPD page 80h, as the kernel read
    it); ``wwn`` the logical unit's name as Linux gives it (``wwid``:
    ``naa.5000c500…``, ``eui.…``, ``t10.…``, or a SCSI name string;
    decoded from VPD page 83h by :attr:`sgpy.responses.DeviceIdentification.wwn`
    where the kernel has no ``wwid``); ``transport`` the kind of transport
    (``sas``, ``fc``, ``fcoe``, ``iscsi``, ``spi``, ``srp``, ``sbp``,
    ``usb``, ``sata``, ``ata``, ``virtio``, or ``pseudo`` for scsi_debug)
    and ``transport_address`` the target port's name on it (a SAS address,
    an FC port name and port ID, an iSCSI target name with its portal group
    tag...); ``host_driver`` the SCSI host's driver (``proc_name``:
    ``ahci``, ``mpt3sas``, ``scsi_debug``...); ``queue_depth`` the queue
    depth the kernel uses for the device.
    """

    path: str
    name: str
    host: int
    channel: int
    target: int
    lun: int
    type: int
    vendor: str = ""
    model: str = ""
    revision: str = ""
    device_node: Optional[str] = None
    accessible: bool = False
    state: Optional[str] = None
    size_bytes: Optional[int] = None
    logical_block_size: Optional[int] = None
    serial: Optional[str] = None
    wwn: Optional[str] = None
    transport: Optional[str] = None
    transport_address: Optional[str] = None
    host_driver: Optional[str] = None
    queue_depth: Optional[int] = None

    @property
    def hctl(self) -> str:
        """The SCSI address as ``H:C:T:L``."""
        return f"{self.host}:{self.channel}:{self.target}:{self.lun}"

    @property
    def type_name(self) -> str:
        """The peripheral device type in lower case (``disk``, ``tape``, ``cd_dvd``, ``zbc``...)."""
        try:
            return PeripheralDeviceType(self.type).name.lower()
        except ValueError:
            return f"type_{self.type:02x}h"

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form (the keys ``sgpy list --json`` prints)."""
        return {
            "path": self.path,
            "name": self.name,
            "hctl": self.hctl,
            "host": self.host,
            "channel": self.channel,
            "target": self.target,
            "lun": self.lun,
            "type": self.type,
            "type_name": self.type_name,
            "vendor": self.vendor,
            "model": self.model,
            "revision": self.revision,
            "device_node": self.device_node,
            "accessible": self.accessible,
            "state": self.state,
            "size_bytes": self.size_bytes,
            "logical_block_size": self.logical_block_size,
            "serial": self.serial,
            "wwn": self.wwn,
            "transport": self.transport,
            "transport_address": self.transport_address,
            "host_driver": self.host_driver,
            "queue_depth": self.queue_depth,
        }

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def _read(path: str) -> Optional[str]:
    """A sysfs attribute, stripped; None when it cannot be read (gone, absent)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _read_bytes(path: str) -> Optional[bytes]:
    """A binary sysfs attribute (a VPD page); None when it cannot be read or is empty."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data or None


def read_sysfs_int(path: str) -> Optional[int]:
    """A sysfs attribute holding a decimal number; None when absent or not a number."""
    text = _read(path)
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _parse_hctl(text: str) -> Optional[Tuple[int, int, int, int]]:
    m = _HCTL.match(text.strip())
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))


def _sg_number(name: str) -> Tuple[int, str]:
    digits = name[2:]
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)


def _upper_node(devdir: str, dev: str) -> Optional[str]:
    """The node of the upper-level driver bound to the logical unit at ``devdir``."""
    for sub, pattern in _UPPER:
        try:
            names = sorted(os.listdir(os.path.join(devdir, sub)))
        except OSError:
            continue
        for n in names:
            if pattern.match(n):
                return os.path.join(dev, n)
    return None


#: ``/sys/block/X/size`` counts 512-byte sectors whatever the device's block size (include/linux/blk_types.h).
_SECTOR = 512


def _block_size(devdir: str) -> Tuple[Optional[int], Optional[int]]:
    """``(size in bytes, logical block size)`` of the block device bound to the logical unit at ``devdir``."""
    try:
        names = sorted(os.listdir(os.path.join(devdir, "block")))
    except OSError:
        return None, None
    for n in names:
        sectors = read_sysfs_int(os.path.join(devdir, "block", n, "size"))
        if sectors is not None:
            return sectors * _SECTOR, read_sysfs_int(os.path.join(devdir, "block", n, "queue", "logical_block_size"))
    return None, None


def _serial(devdir: str) -> Optional[str]:
    """The serial number from the VPD page 80h the kernel keeps (``vpd_pg80``), trimmed; None without one."""
    from sgpy.errors import MalformedResponse
    from sgpy.responses import UnitSerialNumber

    data = _read_bytes(os.path.join(devdir, "vpd_pg80"))
    if data is None:
        return None
    try:
        serial = UnitSerialNumber.from_bytes(data).serial
    except MalformedResponse:
        return None
    serial = serial.strip(" \0") if serial else None
    return serial or None


def _wwn(devdir: str) -> Optional[str]:
    """The logical unit's name: the kernel's ``wwid``, else decoded from its ``vpd_pg83``."""
    from sgpy.errors import MalformedResponse
    from sgpy.responses import DeviceIdentification

    wwid = _read(os.path.join(devdir, "wwid"))
    if wwid:
        return wwid
    data = _read_bytes(os.path.join(devdir, "vpd_pg83"))
    if data is None:
        return None
    try:
        return DeviceIdentification.from_bytes(data).wwn
    except MalformedResponse:
        return None


def _transport(sysfs: str, devdir: str, hctl: Tuple[int, int, int, int], driver: Optional[str]) \
        -> Tuple[Optional[str], Optional[str]]:
    """``(kind, target port name)`` of the transport behind the logical unit, found as lsscsi ``-t``
    finds it: the transport classes of its host, then the shape of its sysfs path, then the driver."""
    h, c, t, _ = hctl
    host = f"host{h}"
    cls = os.path.join(sysfs, "class")
    parts = devdir.split(os.sep)
    if os.path.exists(os.path.join(cls, "sas_host", host)):
        # .../end_device-H:B:P/target.../H:C:T:L: the end device holds the SAS address
        end = parts[-3] if len(parts) >= 3 else ""
        return "sas", _read(os.path.join(cls, "sas_device", end, "sas_address"))
    if os.path.exists(os.path.join(cls, "spi_host", host)):
        return "spi", str(t)
    fc_host = os.path.join(cls, "fc_host", host)
    if os.path.exists(fc_host):
        kind = "fcoe" if " over " in (_read(os.path.join(fc_host, "symbolic_name")) or "") else "fc"
        port = os.path.join(cls, "fc_transport", f"target{h}:{c}:{t}")
        name, ident = _read(os.path.join(port, "port_name")), _read(os.path.join(port, "port_id"))
        return kind, f"{name},{ident}" if name and ident else name
    if os.path.exists(os.path.join(cls, "srp_host", host)):
        return "srp", None
    if os.path.isdir(os.path.join(devdir, "sas_device")):
        return "sas", _read(os.path.join(devdir, "sas_device", "sas_addr"))
    ieee1394 = _read(os.path.join(devdir, "ieee1394_id"))
    if ieee1394:
        return "sbp", ieee1394
    if os.path.exists(os.path.join(cls, "iscsi_host", host)):
        session = next((p for p in parts if re.fullmatch(r"session\d+", p)), None)
        if session is None:
            return "iscsi", None
        sdir = os.path.join(cls, "iscsi_session", session)
        name, tpgt = _read(os.path.join(sdir, "targetname")), _read(os.path.join(sdir, "tpgt"))
        if name and tpgt and tpgt.isdigit():
            return "iscsi", f"{name},t,0x{int(tpgt):x}"  # SAM-5 annex A: the iSCSI target port name
        return "iscsi", name
    return _by_path_and_driver(parts, host, driver)


def _by_path_and_driver(parts: List[str], host: str, driver: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """The transport of a host without a transport class: a USB host by its sysfs path (with the USB
    interface, e.g. ``1-1:1.0``), then ATA, SATA and virtio by the host's driver, scsi_debug by its path."""
    if any(re.fullmatch(r"usb\d+", p) for p in parts) and host in parts:
        return "usb", parts[parts.index(host) - 1]  # the USB interface, e.g. 1-1:1.0
    if driver:
        if driver == "ahci" or driver.startswith("sata"):
            return "sata", None
        if "ata" in driver:
            return "ata", None
        if driver == "virtio_scsi":
            return "virtio", None
    if any(re.fullmatch(r"pseudo_\d+", p) for p in parts):
        return "pseudo", None  # scsi_debug's adapters hang off /sys/devices/pseudo_0
    return None, None


def _device(sysfs: str, dev: str, name: str) -> Optional[Device]:
    """Describe ``/sys/class/scsi_generic/<name>``; None when it vanished meanwhile."""
    sgdir = os.path.join(sysfs, "class", "scsi_generic", name)
    devdir = os.path.realpath(os.path.join(sgdir, "device"))
    hctl = _parse_hctl(os.path.basename(devdir))
    if hctl is None:
        return None
    type_text = _read(os.path.join(devdir, "type"))
    try:
        ptype = int(type_text, 0) if type_text else PeripheralDeviceType.UNKNOWN
    except ValueError:
        ptype = PeripheralDeviceType.UNKNOWN
    path = os.path.join(dev, name)
    size, block = _block_size(devdir)
    driver = _read(os.path.join(sysfs, "class", "scsi_host", f"host{hctl[0]}", "proc_name")) or None
    transport, address = _transport(sysfs, devdir, hctl, driver)
    return Device(
        path=path,
        name=name,
        host=hctl[0],
        channel=hctl[1],
        target=hctl[2],
        lun=hctl[3],
        type=int(ptype),
        vendor=_read(os.path.join(devdir, "vendor")) or "",
        model=_read(os.path.join(devdir, "model")) or "",
        revision=_read(os.path.join(devdir, "rev")) or "",
        device_node=_upper_node(devdir, dev),
        accessible=os.access(path, os.R_OK | os.W_OK),
        state=_read(os.path.join(devdir, "state")),
        size_bytes=size,
        logical_block_size=block,
        serial=_serial(devdir),
        wwn=_wwn(devdir),
        transport=transport,
        transport_address=address,
        host_driver=driver,
        queue_depth=read_sysfs_int(os.path.join(devdir, "queue_depth")),
    )


def devices(*, sysfs: Optional[str] = None, dev: Optional[str] = None) -> List[Device]:
    """Every sg device of this machine, in sg number order (empty without the sg driver).

    ``sysfs`` and ``dev`` default to :data:`SYSFS` and :data:`DEV`.
    """
    sysfs = SYSFS if sysfs is None else sysfs
    dev = DEV if dev is None else dev
    try:
        names = os.listdir(os.path.join(sysfs, "class", "scsi_generic"))
    except OSError:
        return []
    out = []
    for name in sorted(names, key=_sg_number):
        d = _device(sysfs, dev, name)
        if d is not None:
            out.append(d)
    return out


#: Another name for :func:`devices`.
list_devices = devices


@attrs.frozen
class Host:
    """One SCSI host (an HBA, an iSCSI session's host, scsi_debug's adapter), as sysfs describes it.

    ``host`` is its number (the H of H:C:T:L) and ``name`` its kernel name
    (``host0``); ``driver`` the driver's ``proc_name`` (``ahci``,
    ``mpt3sas``, ``iscsi_tcp``, ``scsi_debug``), the column ``lsscsi -H``
    shows; ``transport`` the kind of transport found as for
    ``Device.transport`` (the host's transport class, then its sysfs
    path and its driver) and ``transport_address`` the host's own name on
    it where sysfs gives one (an FC port name and port ID, the host's SAS
    address, an iSCSI initiator name); ``state`` the host's state
    (``running``...), ``can_queue`` the commands it takes at once,
    ``cmd_per_lun`` its default queue depth per logical unit,
    ``sg_tablesize`` the scatter-gather elements per command (what
    ``lsscsi -H --long`` shows); each None where sysfs does not say.
    ``devices`` counts the sg devices behind it.
    """

    host: int
    name: str
    driver: Optional[str] = None
    transport: Optional[str] = None
    transport_address: Optional[str] = None
    state: Optional[str] = None
    can_queue: Optional[int] = None
    cmd_per_lun: Optional[int] = None
    sg_tablesize: Optional[int] = None
    devices: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form (the keys ``sgpy list --hosts --json`` prints)."""
        return {"host": self.host, "name": self.name, "driver": self.driver, "transport": self.transport,
                "transport_address": self.transport_address, "state": self.state, "can_queue": self.can_queue,
                "cmd_per_lun": self.cmd_per_lun, "sg_tablesize": self.sg_tablesize, "devices": self.devices}

    def __str__(self) -> str:
        return self.name


def _host_transport(sysfs: str, name: str, driver: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """``(kind, the host's own name on it)`` for SCSI host ``name``: its transport class first
    (drivers/scsi/scsi_transport_*.c register ``sas_host``, ``fc_host``, ``spi_host``, ``srp_host``,
    ``iscsi_host``), then the shape of its sysfs path, then its driver, as for a logical unit."""
    cls = os.path.join(sysfs, "class")
    hostdir = os.path.join(cls, "scsi_host", name)
    if os.path.exists(os.path.join(cls, "sas_host", name)):
        # mpt2sas/mpt3sas give the HBA's SAS address as a scsi_host attribute
        return "sas", _read(os.path.join(hostdir, "host_sas_address"))
    if os.path.exists(os.path.join(cls, "spi_host", name)):
        return "spi", None
    fc_host = os.path.join(cls, "fc_host", name)
    if os.path.exists(fc_host):
        kind = "fcoe" if " over " in (_read(os.path.join(fc_host, "symbolic_name")) or "") else "fc"
        port, ident = _read(os.path.join(fc_host, "port_name")), _read(os.path.join(fc_host, "port_id"))
        return kind, f"{port},{ident}" if port and ident else port
    if os.path.exists(os.path.join(cls, "srp_host", name)):
        return "srp", None
    iscsi_host = os.path.join(cls, "iscsi_host", name)
    if os.path.exists(iscsi_host):
        return "iscsi", _read(os.path.join(iscsi_host, "initiatorname")) or None
    return _by_path_and_driver(os.path.realpath(hostdir).split(os.sep), name, driver)


def _host_number(name: str) -> Optional[int]:
    m = re.fullmatch(r"host(\d+)", name)
    return int(m.group(1)) if m else None


def hosts(*, sysfs: Optional[str] = None) -> List[Host]:
    """Every SCSI host of this machine (``/sys/class/scsi_host``), in host number order, as
    ``lsscsi -H`` lists them; empty when there is none.  Nothing is opened but sysfs attributes."""
    sysfs = SYSFS if sysfs is None else sysfs
    try:
        names = os.listdir(os.path.join(sysfs, "class", "scsi_host"))
    except OSError:
        return []
    per_host: Dict[int, int] = {}
    for d in devices(sysfs=sysfs):
        per_host[d.host] = per_host.get(d.host, 0) + 1
    out = []
    for name in names:
        number = _host_number(name)
        if number is None:
            continue
        hostdir = os.path.join(sysfs, "class", "scsi_host", name)
        driver = _read(os.path.join(hostdir, "proc_name")) or None
        transport, address = _host_transport(sysfs, name, driver)
        out.append(Host(host=number, name=name, driver=driver, transport=transport, transport_address=address,
                        state=_read(os.path.join(hostdir, "state")) or None,
                        can_queue=read_sysfs_int(os.path.join(hostdir, "can_queue")),
                        cmd_per_lun=read_sysfs_int(os.path.join(hostdir, "cmd_per_lun")),
                        sg_tablesize=read_sysfs_int(os.path.join(hostdir, "sg_tablesize")),
                        devices=per_host.get(number, 0)))
    return sorted(out, key=lambda h: h.host)


def _hctl_of_devno(sysfs: str, kind: str, major: int, minor: int) -> Optional[Tuple[int, int, int, int]]:
    """The SCSI address of the logical unit behind device number ``major:minor``.

    ``kind`` is ``"block"`` or ``"char"``.  A partition leads to its disk;
    sg, st, sr, ch and bsg nodes lead to their logical unit.
    """
    link = os.path.join(sysfs, "dev", kind, f"{major}:{minor}")
    if not os.path.lexists(link):
        return None
    sysdir = os.path.realpath(link)
    if kind == "block" and os.path.exists(os.path.join(sysdir, "partition")):
        sysdir = os.path.dirname(sysdir)
    if os.path.basename(os.path.dirname(sysdir)) == "bsg":
        return _parse_hctl(os.path.basename(sysdir))  # /sys/class/bsg/H:C:T:L
    device = os.path.join(sysdir, "device")
    if not os.path.lexists(device):
        return None
    return _parse_hctl(os.path.basename(os.path.realpath(device)))


def find(name: str, *, sysfs: Optional[str] = None, dev: Optional[str] = None) -> Device:
    """The sg device behind ``name``.

    ``name`` may be an sg node (``/dev/sg1``, ``sg1``), the node of another
    driver on the same logical unit (``/dev/sdb``, a partition
    ``/dev/sdb1``, ``/dev/st0``, ``/dev/sr0``, ``/dev/bsg/0:0:1:0``), a
    symlink to one (``/dev/disk/by-id/...``), or an SCSI address
    ``H:C:T:L``.  Raises FileNotFoundError when no sg device matches.
    """
    sysfs = SYSFS if sysfs is None else sysfs
    dev = DEV if dev is None else dev
    found = devices(sysfs=sysfs, dev=dev)
    text = os.fspath(name)
    hctl = _parse_hctl(text)
    if hctl is None:
        path = text if os.sep in text else os.path.join(dev, text)
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            kind = "block" if stat.S_ISBLK(st.st_mode) else "char"
            hctl = _hctl_of_devno(sysfs, kind, os.major(st.st_rdev), os.minor(st.st_rdev))
        if hctl is None:
            base = os.path.basename(os.path.realpath(path) if st is not None else path)
            for d in found:
                if base == d.name or (d.device_node is not None and base == os.path.basename(d.device_node)):
                    return d
    if hctl is not None:
        for d in found:
            if (d.host, d.channel, d.target, d.lun) == hctl:
                return d
    raise FileNotFoundError(errno.ENOENT, f"no sg device for {text} (is the sg driver loaded? see 'sgpy list')",
                            text)


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`devices`."""

    def __call__(self, *, sysfs: Optional[str] = None, dev: Optional[str] = None) -> List[Device]:
        return devices(sysfs=sysfs, dev=dev)


sys.modules[__name__].__class__ = _CallableModule
