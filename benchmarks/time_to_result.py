"""How long ``backprop train`` takes beyond its training, at two commits (issue 24, item 2).

    python benchmarks/time_to_result.py BEFORE [AFTER] [--rounds 3] [--data digits]

Each commit's ``src/`` is exported as `ab_commits.export` does and run in fresh processes,
alternating BEFORE, AFTER, BEFORE, ... so that a change in load hits both alike. A round
measures, per side:

- the cumulative import time of ``backprop.cli`` and of ``backprop.run``
  (``python -X importtime``, each in its own process), and the heavy packages each loads;
- ``backprop train --data DATA --quiet`` end to end: the process's wall time over the
  ``train_seconds`` it records in ``metrics.json`` (the issue's "time to result" ratio),
  and their difference (the seconds spent outside training).

Prints the medians of each side, the median per-round ratios AFTER/BEFORE and the load
average before and after; only an idle machine gives figures worth recording. ``--out
FILE`` also writes them as JSON (``medians``/``before``/``after``, ``ratios``, ``machine``)
for docs/benchmarks.md to cite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_record, write_record
from ab_commits import ISOLATE, export

#: Packages the train path should load only when it uses them (issue 24, item 2).
HEAVY = ("scipy", "sklearn", "matplotlib", "numba", "tqdm", "pandas", "torch")

# Runs ``backprop`` (sys.argv[2:]) from the exported tree in sys.argv[1].
RUN_CLI = ISOLATE + "sys.argv = ['backprop', *sys.argv[2:]]\nfrom backprop.cli import main\n"
RUN_CLI += "sys.exit(main())\n"


def import_time(src: Path, module: str) -> tuple[float, set[str]]:
    """Seconds to import ``module`` (cumulative, as ``-X importtime`` counts them) in a
    fresh process, and which of `HEAVY` it loaded."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ISOLATE + f"import {module}\n", str(src)],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    seconds, heavy = float("nan"), set()
    for line in out.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line.split("|")
        name = name.strip()
        if name == module:
            seconds = int(cumulative) / 1e6
        if name in HEAVY:
            heavy.add(name)
    return seconds, heavy


def record_key(row: str) -> str:
    """A printed row's key in the JSON record (docs cite ``FILE / medians / after / KEY``,
    so no "/" in it): "wall / train_seconds" -> "wall_over_train_seconds"."""
    row = row.replace(" / ", " over ").replace(" - ", " minus ").replace("(s)", "s")
    return "_".join("".join(c if c.isalnum() else " " for c in row.lower()).split())


def train_run(src: Path, data: str, out: Path) -> tuple[float, float]:
    """Wall seconds of ``backprop train --data DATA --quiet --out OUT`` and its
    ``train_seconds``."""
    t0 = time.perf_counter()
    command = ["train", "--data", data, "--quiet", "--out", str(out)]
    subprocess.run(
        [sys.executable, "-c", RUN_CLI, str(src), *command],
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "metrics.json").read_text())["train_seconds"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="a commit, e.g. a hash or HEAD~3")
    p.add_argument("after", nargs="?", default="WORKTREE", help="a commit; default the tree")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data", default="digits", help="the dataset trained (default digits)")
    p.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    load_start = os.getloadavg()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load_start)}")
    sides = {"before": args.before, "after": args.after}
    rows: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
    loaded: dict[str, dict[str, set[str]]] = {s: {} for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        src = {}
        for side, rev in sides.items():
            (Path(tmp) / side).mkdir()
            src[side] = export(rev, Path(tmp) / side)
        for r in range(args.rounds):
            for side in sides:
                row = rows[side]
                for module in ("backprop.cli", "backprop.run"):
                    seconds, heavy = import_time(src[side], module)
                    row.setdefault(f"import {module} (s)", []).append(seconds)
                    loaded[side][module] = heavy
                wall, train = train_run(src[side], args.data, Path(tmp) / f"{side}-run{r}")
                row.setdefault(f"train --data {args.data}: wall (s)", []).append(wall)
                row.setdefault("its train_seconds (s)", []).append(train)
                row.setdefault("wall / train_seconds", []).append(wall / train)
                # What the run costs beyond its training: the part this benchmark tracks,
                # unmoved by changes to the training itself (such as its checkpoints).
                row.setdefault("wall - train_seconds (s)", []).append(wall - train)
    print(f"{args.rounds} rounds, medians; before = {args.before}, after = {args.after}")
    print(f"{'':<38}{'before':>10}{'after':>10}{'after/before':>14}")
    record: dict[str, Any] = {"medians": {"before": {}, "after": {}}, "ratios": {}}
    for name, before in rows["before"].items():
        after = rows["after"][name]
        ratio = statistics.median(a / b for a, b in zip(after, before, strict=True))
        b, a = statistics.median(before), statistics.median(after)
        print(f"{name:<38}{b:10.3f}{a:10.3f}{ratio:14.3f}")
        key = record_key(name)
        record["medians"]["before"][key] = round(b, 4)
        record["medians"]["after"][key] = round(a, 4)
        record["ratios"][key] = round(ratio, 4)
    for side in sides:
        for module, heavy in loaded[side].items():
            print(f"{side}: import {module} loads {', '.join(sorted(heavy)) or 'none'} of {HEAVY}")
    load_end = os.getloadavg()
    print(f"load average after: {' '.join(f'{v:.2f}' for v in load_end)}")
    if args.out is not None:
        record["machine"] = machine_record(load_start, load_end)
        record.update(
            before=args.before,
            after=args.after,
            rounds=args.rounds,
            data=args.data,
            heavy_imports={s: {m: sorted(h) for m, h in loaded[s].items()} for s in sides},
        )
        write_record(args.out, record)


if __name__ == "__main__":
    main()
