"""Known conformance results: compare a run of sgpy.conformance with the checked-in outcomes.

``SGPY_CONFORMANCE_RECORD=1`` rewrites the expected file from the run (then
read the diff: every change of verdict needs a reason).
"""

import io
import json
import os
import re
import subprocess
import sys

from sgpy import conformance

DATA = os.path.join(os.path.dirname(__file__), "data", "conformance")


def check_against_known(target, name, **options):
    out = io.StringIO()
    json_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"sgpy-conform-{name}-{os.getpid()}.json")
    code = conformance.run(target, json_path=json_path, out=out, **options)
    with open(json_path, encoding="utf-8") as f:
        doc = json.load(f)
    os.remove(json_path)
    got = {r["name"]: r["outcome"] for r in doc["results"]}
    path = os.path.join(DATA, f"{name}.json")
    if os.environ.get("SGPY_CONFORMANCE_RECORD"):
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"target": name, "outcomes": got}, f, indent=1, sort_keys=True)
            f.write("\n")
    with open(path, encoding="utf-8") as f:
        want = json.load(f)["outcomes"]
    assert got == want, out.getvalue()
    shall_failed = any(r["outcome"] == "fail" and r["level"] == "shall" for r in doc["results"])
    assert code == (1 if shall_failed else 0)
    return doc


def run_per_worker(targets, select):
    """Run the checks matching ``select`` with pytest (under pytest-xdist, one worker per target, each running
    every check: ``--dist each``); return one line per check run: "path::name STATUS" alone, "[gwN] [ n%]
    STATUS path::name" under xdist."""
    args = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--pyargs", "sgpy.conformance",
            "-k", select]
    for t in targets:
        args += ["--sgpy-target", t]
    if len(targets) > 1:
        args += ["--tx", f"{len(targets)}*popen", "--dist", "each"]
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    return [line for line in out.splitlines()
            if re.search(r"test_[a-z]+\.py::\S+ (PASSED|FAILED|SKIPPED|ERROR)", line)
            or re.search(r"^\[gw\d+\] .*(PASSED|FAILED|SKIPPED|ERROR) \S*test_[a-z]+\.py::", line)]
