"""List the sg devices and send each a standard INQUIRY through sgpy."""

import glob
import os

from sgpy import _binding as b


def inquiry(path: str) -> bytes:
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        buf = bytearray(96)
        cdb = bytes([0x12, 0, 0, 0, len(buf), 0])  # INQUIRY, SPC-5 6.7
        r = b.SyncCaller(fd).call(cdb, b.SG_DXFER_FROM_DEV, buf, len(buf), 5000)
        if r.status or r.host_status or r.driver_status:
            raise OSError(f"INQUIRY failed: status={r.status:#x} host={r.host_status:#x} sense={r.sense.hex()}")
        return bytes(buf[: len(buf) - r.resid])
    finally:
        os.close(fd)


def main() -> None:
    paths = sorted(glob.glob("/sys/class/scsi_generic/sg*"), key=lambda p: int(p.rsplit("sg", 1)[1]))
    print(f"{len(paths)} sg device(s):")
    for sysdir in paths:
        dev = "/dev/" + os.path.basename(sysdir)
        hctl = os.path.basename(os.path.realpath(os.path.join(sysdir, "device")))
        data = inquiry(dev)
        vendor, product, rev = (data[a:z].decode("ascii", "replace").strip() for a, z in ((8, 16), (16, 32), (32, 36)))
        print(f"  {dev:10} [{hctl}]  type={data[0] & 0x1f:#04x}  vendor={vendor!r} product={product!r} "
              f"revision={rev!r}  version={data[2]:#04x}")
        print(f"    INQUIRY ({len(data)} bytes): {data[:36].hex()}")


if __name__ == "__main__":
    main()
