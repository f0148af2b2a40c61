"""Is the engine slower than at another commit? One `fit` epoch, two commits, interleaved.

    python benchmarks/ab_commits.py BEFORE [AFTER] [--rounds 5] [--hidden 512] [--batch 128]

Each commit's ``src/`` is exported with ``git archive`` into a temporary directory and
timed in its own fresh process (so the two never share a BLAS thread pool), alternating
BEFORE, AFTER, BEFORE, ... so that a change in the machine's load hits both alike. AFTER
defaults to the working tree. A round is one epoch of `backprop.training.fit` (the path
`backprop train` takes, validation off, constant rate) on 60,000 x 784 float32 random
inputs with 10 classes, after one warm-up epoch. Prints the median seconds of each side,
the median of the per-round ratios AFTER/BEFORE (below 1: AFTER is faster) and the load
average before and after; the machine should be idle (check ``uptime``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The start of a child's program: the exported tree (sys.argv[1]) comes first on sys.path
#: and the editable install's import hook (which would bring the working tree back) is
#: removed.
ISOLATE = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv[1])
"""

# Runs in the child.
CHILD = (
    ISOLATE
    + r"""
import time
import numpy as np
from backprop.network import MLP
from backprop.training import fit
try:
    from backprop.config import TrainConfig
except ImportError:  # a commit from before backprop.config (issue 23)
    from backprop.training import TrainConfig
H, B, opt = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
X = rng.random((60000, 784), dtype=np.float32)
y = rng.integers(0, 10, 60000)
cfg = TrainConfig(hidden=(H,), epochs=1, batch_size=B, optimizer=opt, schedule="constant")
net = MLP([784, H, 10], seed=0)
fit(net, X, y, config=cfg, progress=False)  # warm-up: buffers, BLAS threads
t0 = time.perf_counter()
fit(net, X, y, config=cfg, progress=False)
print(time.perf_counter() - t0)
"""
)


def export(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` (or the working tree for "WORKTREE") under ``into``."""
    if rev == "WORKTREE":
        return ROOT / "src"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="a commit, e.g. a hash or HEAD~3")
    p.add_argument("after", nargs="?", default="WORKTREE", help="a commit; default the tree")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--optimizer", default="sgd")
    args = p.parse_args(argv)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        src = {}
        for side, rev in (("before", args.before), ("after", args.after)):
            (Path(tmp) / side).mkdir()
            src[side] = export(rev, Path(tmp) / side)
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.rounds):
            for side in ("before", "after"):
                child_args = [str(src[side]), str(args.hidden), str(args.batch), args.optimizer]
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, *child_args],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                times[side].append(float(out.stdout.split()[-1]))
    ratio = statistics.median(a / b for a, b in zip(times["after"], times["before"], strict=True))
    print(
        f"{args.optimizer} H={args.hidden} B={args.batch}, {args.rounds} rounds: before "
        f"{args.before} {statistics.median(times['before']):.3f} s, after {args.after} "
        f"{statistics.median(times['after']):.3f} s per epoch; after/before {ratio:.3f}"
    )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
