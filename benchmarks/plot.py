"""Draw IOPS against queue depth from ``benchmarks/results.json`` into ``docs/_static/perf_qd.png``.

    python benchmarks/plot.py [results.json] [out.png]

Installs matplotlib into the running interpreter's environment (the
project's ``.venv``) with pip when it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _matplotlib():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError:
        print("plot: installing matplotlib with pip", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def main() -> int:
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results.json")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "_static", "perf_qd.png")
    with open(src, encoding="utf-8") as f:
        summary = json.load(f)
    plt = _matplotlib()
    settings = [("0", "delay=0 (software cost only)"), ("50000", "ndelay=50000 (a 50 µs device)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=False)
    # Contenders missing from older results files are left out of the plot.
    styles = {"sgpy": ("tab:blue", "o", "sgpy (IO objects)"),
              "sgpy job": ("tab:purple", "D", "sgpy job (Channel.run)"),
              "fio": ("tab:orange", "s", "fio --ioengine=sg"),
              "C": ("tab:green", "^", "C floor (same strategy)")}
    for ax, (setting, title) in zip(axes, settings):
        for who, (color, marker, label) in styles.items():
            qds, ys = [], []
            for qd in (1, 16, 64):
                v = summary["iops"].get(f"{setting}|async randread QD {qd}|{who}")
                if v is not None:
                    qds.append(qd)
                    ys.append(v["median"])
            if qds:
                ax.plot(qds, ys, marker=marker, color=color, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 16, 64])
        ax.set_xticklabels(["1", "16", "64"])
        ax.set_yscale("log")
        ax.set_xlabel("queue depth (one device, random 4 KiB READ(10))")
        ax.set_ylabel("IOPS (median)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("scsi_debug under QEMU TCG, Debian kernel " + summary.get("kernel", ""), fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    fig.savefig(dst, dpi=110)
    print(f"plot: wrote {os.path.relpath(dst, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
