#!/usr/bin/env python3
"""CDB encode/decode speed: sgpy against python-scsi (PyPI ``pyscsi``) in the same run.

Encoding means building the command object and getting its CDB bytes;
decoding means turning CDB bytes back into fields.  Each case runs N times,
best of R repeats (timeit style), and prints CDBs per second.

    python benchmarks/bench_cdb.py [-n 100000] [-r 5]

python-scsi builds a CDB when a command object is constructed
(``Read10(opcode, blocksize, lba, tl)``, ``Inquiry(opcode, evpd, page_code,
alloclen)``, with the opcode objects from ``pyscsi.pyscsi.scsi_enum_command``)
and decodes with the ``unmarshall_cdb`` static method, which reads the bit
table of the most recently constructed command class, so each pyscsi decode
case constructs one command of its class first.  Its decoder returns a dict.
If pyscsi is not installed, only sgpy's figures are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sgpy import command  # noqa: E402


def sgpy_cases() -> Dict[str, Callable[[], object]]:
    """The four sgpy cases."""
    read10, inquiry, decode = command.Read10, command.Inquiry, command.decode
    read10_cdb = read10(lba=0x1000, transfer_length=8).cdb
    inquiry_cdb = inquiry(evpd=True, page_code=0x80, allocation_length=96).cdb
    return {
        "READ(10) encode": lambda: read10(lba=0x1000, transfer_length=8).cdb,
        "INQUIRY encode": lambda: inquiry(evpd=True, page_code=0x80, allocation_length=96).cdb,
        "READ(10) decode": lambda: decode(read10_cdb),
        "INQUIRY decode": lambda: decode(inquiry_cdb),
    }


def pyscsi_cases() -> Optional[Dict[str, Callable[[], object]]]:
    """The same four cases with python-scsi, or None when it is not installed."""
    try:
        from pyscsi.pyscsi.scsi_cdb_inquiry import Inquiry
        from pyscsi.pyscsi.scsi_cdb_read10 import Read10
        from pyscsi.pyscsi.scsi_enum_command import sbc, spc
    except ImportError:
        return None
    read_op, inquiry_op = sbc.READ_10, spc.INQUIRY
    read10_cdb = bytes(Read10(read_op, 512, 0x1000, 8).cdb)
    inquiry_cdb = bytes(Inquiry(inquiry_op, evpd=1, page_code=0x80, alloclen=96).cdb)
    if read10_cdb != command.Read10(lba=0x1000, transfer_length=8).cdb:
        raise SystemExit(f"pyscsi READ(10) CDB {read10_cdb.hex()} differs from sgpy's")
    if inquiry_cdb != command.Inquiry(evpd=True, page_code=0x80, allocation_length=96).cdb:
        raise SystemExit(f"pyscsi INQUIRY CDB {inquiry_cdb.hex()} differs from sgpy's")

    def decode_read10() -> object:
        return Read10.unmarshall_cdb(read10_cdb)

    def decode_inquiry() -> object:
        return Inquiry.unmarshall_cdb(inquiry_cdb)

    return {
        "READ(10) encode": lambda: Read10(read_op, 512, 0x1000, 8).cdb,
        "INQUIRY encode": lambda: Inquiry(inquiry_op, evpd=1, page_code=0x80, alloclen=96).cdb,
        "READ(10) decode": decode_read10,
        "INQUIRY decode": decode_inquiry,
        # unmarshall_cdb uses the bit table of the last command class built:
        "_setup READ(10) decode": lambda: Read10(read_op, 512, 0, 1),
        "_setup INQUIRY decode": lambda: Inquiry(inquiry_op),
    }


def rates(fns: List[Callable[[], object]], number: int, repeat: int) -> List[float]:
    """Best calls per second of each function over ``repeat`` rounds of ``number`` calls.

    The functions take turns within each round, so a change in machine load
    hits both libraries alike and the ratio stays fair.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timeit.timeit(fn, number=number))
    return [number / seconds for seconds in best]


def main(argv: Optional[List[str]] = None) -> int:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description="CDB encode/decode benchmark")
    parser.add_argument("-n", "--number", type=int, default=100_000, help="calls per repeat")
    parser.add_argument("-r", "--repeat", type=int, default=5, help="repeats (the best counts)")
    args = parser.parse_args(argv)

    ours = sgpy_cases()
    theirs = pyscsi_cases()
    print(f"Python {sys.version.split()[0]}, N={args.number}, best of {args.repeat}")
    if theirs is None:
        print("pyscsi is not installed (pip install pyscsi): showing sgpy figures only")
        print(f"{'case':<18}{'sgpy CDBs/s':>14}")
    else:
        print(f"{'case':<18}{'sgpy CDBs/s':>14}{'pyscsi CDBs/s':>16}{'ratio':>9}")
    for name, fn in ours.items():
        if theirs is None:
            (sgpy_rate,) = rates([fn], args.number, args.repeat)
            print(f"{name:<18}{sgpy_rate:>14,.0f}")
            continue
        setup = theirs.get(f"_setup {name}")
        if setup is not None:
            setup()
        sgpy_rate, pyscsi_rate = rates([fn, theirs[name]], args.number, args.repeat)
        print(f"{name:<18}{sgpy_rate:>14,.0f}{pyscsi_rate:>16,.0f}{sgpy_rate / pyscsi_rate:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
