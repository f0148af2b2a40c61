"""Data larger than memory (issue 14 item 3): peak resident memory and epoch-time cost.

``memory``: writes a float32 ``.npy`` of ``--rows`` x (``--cols`` + 1) (the last column
is a class label 0..9; random values), runs ``backprop train --data FILE --epochs 1``
in a child process and reports its peak resident memory (``ru_maxrss``, i.e. VmHWM) and
the peaks of RssAnon and RssFile sampled every 50 ms from /proc, against the file's
size. ``--no-release`` runs the same child with the mapping's pages never dropped
(`backprop.data.rows.RELEASE_BYTES` set huge): what plain memory-mapping would cost.

``time``: one epoch of `backprop.train` on the same data twice, read through the memory
map (`Rows` over the file) and from an in-memory copy of it, interleaved ``--rounds``
times; prints the median epoch seconds of each and their ratio.

    .venv/bin/python benchmarks/out_of_core.py memory --rows 1300000 --file /tmp/big.npy
    .venv/bin/python benchmarks/out_of_core.py time --rows 100000 --file /tmp/small.npy

``--keep`` leaves the file (it is deleted afterwards otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

CHILD = """
import sys
import backprop.data.rows as rows
if sys.argv[1] == "no-release":
    rows.RELEASE_BYTES = 1 << 62
from backprop.cli import main
sys.exit(main(sys.argv[2:]))
"""


def write_file(path: Path, n: int, d: int, seed: int = 0) -> None:
    """A float32 (n, d + 1) ``.npy`` written chunk by chunk (never whole in memory)."""
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d + 1))
    rng = np.random.default_rng(seed)
    step = 50_000
    for s in range(0, n, step):
        m = min(step, n - s)
        a[s : s + m, :d] = rng.random((m, d), dtype=np.float32)
        a[s : s + m, d] = rng.integers(0, 10, m)
        a.flush()
    del a


def _status(pid: int) -> dict[str, int]:
    """RssAnon, RssFile, VmHWM of a process in bytes (empty once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def train_child(path: Path, out: Path, args: argparse.Namespace, release: bool) -> dict:
    """``backprop train`` on ``path`` in a child; its peaks and wall time."""
    cmd = [
        sys.executable, "-c", CHILD, "release" if release else "no-release",
        "train", "--data", str(path), "--epochs", "1", "--hidden", str(args.hidden),
        "--batch-size", "128", "--out", str(out), "--force", "--quiet",
    ]  # fmt: skip
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.Popen(cmd)
    peaks = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for k, v in _status(proc.pid).items():
                peaks[k] = max(peaks[k], v)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rc = proc.wait()
    done.set()
    sampler.join()
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if rc != 0:
        raise SystemExit(f"backprop train exited with {rc}")
    return {
        "release": release,
        "wall_s": round(time.perf_counter() - t0, 1),
        "ru_maxrss_MB": round(maxrss / 1e6, 1) if maxrss > before * 1024 else None,
        "peak_RssAnon_MB": round(peaks["RssAnon"] / 1e6, 1),
        "peak_RssFile_MB": round(peaks["RssFile"] / 1e6, 1),
        "VmHWM_MB": round(peaks["VmHWM"] / 1e6, 1),
    }


def memory(args: argparse.Namespace, path: Path) -> dict:
    out = path.with_suffix(".run")
    runs = [train_child(path, out, args, release=True)]
    if args.no_release:
        runs.append(train_child(path, out, args, release=False))
    return {"runs": runs}


def epoch_times(args: argparse.Namespace, path: Path) -> dict:
    from backprop.config import TrainConfig
    from backprop.data import load_dataset
    from backprop.run import train

    ds = load_dataset(str(path))
    in_memory = dataclasses.replace(
        ds, X_train=np.asarray(ds.X_train), X_test=np.asarray(ds.X_test)
    )
    config = TrainConfig(hidden=(args.hidden,), epochs=1)
    times: dict[str, list[float]] = {"memory-mapped": [], "in memory": []}
    for _ in range(args.rounds):
        for name, data in (("memory-mapped", ds), ("in memory", in_memory)):
            _, result = train(data, config, progress=False)
            times[name].append(result.history[0].seconds)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "epoch_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "ratio": round(med["memory-mapped"] / med["in memory"], 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["memory", "time"])
    p.add_argument("--file", type=Path, required=True, help="the .npy to write and read")
    p.add_argument("--rows", type=int, default=1_300_000)
    p.add_argument("--cols", type=int, default=784)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-release", action="store_true", help="also run without madvise")
    p.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = p.parse_args()
    path = args.file
    if not path.exists():
        write_file(path, args.rows, args.cols)
    load = os.getloadavg()
    try:
        result = memory(args, path) if args.what == "memory" else epoch_times(args, path)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    doc = {
        "what": args.what,
        "file_MB": round((args.rows * (args.cols + 1) * 4 + 128) / 1e6, 1),
        "rows": args.rows,
        "cols": args.cols,
        "hidden": args.hidden,
        "loadavg_at_start": [round(x, 2) for x in load],
        **result,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
