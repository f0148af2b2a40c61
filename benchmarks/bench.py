"""The performance benchmark of issue 5: backprop vs PyTorch CPU (eager and
``torch.compile``), JAX ``jit`` and scikit-learn.

Run with ``make bench`` or ``python benchmarks/bench.py
--quick`` (seconds, tiny sizes: a smoke test, not a measurement). In one process and at
one thread count it measures

- training throughput over an epoch of a 784-H-10 ReLU network (H in 512, 1024; batch
  32, 128, 512; SGD and Adam) of the backprop engine step (`MLP.loss_and_grads` into
  preallocated gradients + `optimizer.step`, batches gathered as a training loop does),
  of `backprop.training.fit`, of PyTorch eager and of scikit-learn's `MLPClassifier`; in
  the headline configuration also ``torch.compile`` and JAX ``jit`` of the same step
  (issue 24), their first epoch (compilation) recorded apart, each peer in its own
  process; a peer that cannot run here is left out with one line saying why;
- the GEMM floor: the same five matrix products per step in the same shapes, alone;
- inference throughput (10,000 rows);
- peak RSS of training on Fashion-MNIST-sized data, in a fresh subprocess;
- width scaling 128..4096 against the GEMM floor, and linearity in the number of samples;
- time-to-accuracy on Fashion-MNIST (0.90 test accuracy) for the default recipe;
- the busy-machine case: the digits default recipe idle and with one core kept busy by
  another process, and the 784-512-10 step under that load (issue 12).

The header gives the load average at the start and end, with a warning when the machine
was busy (`timing.busy_warning`).

Contenders of one configuration run interleaved, round after round, so that a noisy
machine slows all of them alike; the report gives medians over rounds and, for ratios,
the median of the per-round ratios. Results go to a printed table, ``results.json`` and
``results.png`` in ``--out``.

This file is the entry point (arguments, which sections run at which sizes, where results
go); the contenders are in ``contenders.py`` (its registry ``CONTENDERS``), how they are
timed in ``timing.py``, the sections in ``sections.py`` and the report in
``bench_report.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

_BAD_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_FLAG = "BACKPROP_BENCH_UNSET"


def _reexec_without_bad_env() -> None:
    """Restart this process without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (they slow NumPy).

    OpenBLAS reads them when it is loaded, so unsetting them after ``import numpy`` would
    be too late: the process re-executes itself with a cleaned environment instead.
    """
    bad = [k for k in _BAD_ENV if k in os.environ]
    if not bad or os.environ.get(_REEXEC_FLAG) is not None:
        return
    env = {k: v for k, v in os.environ.items() if k not in bad}
    env[_REEXEC_FLAG] = ",".join(f"{k}={os.environ[k]}" for k in bad)
    print(f"bench: unsetting {', '.join(bad)} for this process (re-executing)", flush=True)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


if __name__ == "__main__":
    _reexec_without_bad_env()

# This folder's modules (found also when the tests load this file by path). They import
# NumPy, hence after the re-exec above, so that OpenBLAS sees the clean environment.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import targets, write_json, write_report  # noqa: E402
from contenders import PEERS, make_data, start_workers, worker_main  # noqa: E402
from sections import (  # noqa: E402
    busy_section,
    compile_section,
    inference_section,
    memory_section,
    scaling_section,
    training_section,
    tta_section,
)
from timing import busy_warning, machine_info  # noqa: E402


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results dict it also writes to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    p.add_argument("--repeats", type=int, default=3, help="rounds for the headline config")
    p.add_argument("--grid-repeats", type=int, default=2, help="rounds for the other configs")
    p.add_argument("--grid-samples", type=int, default=10000, help="rows per epoch off-headline")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=None, help="default benchmarks/results/<time>")
    p.add_argument("--skip-tta", action="store_true", help="skip time-to-accuracy")
    p.add_argument("--tta-epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--skip-busy", action="store_true", help="skip the busy-machine case")
    p.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated peers to time beside backprop, of {', '.join(PEERS)} (default "
        "all; torch, PyTorch eager, always runs)",
    )
    args = p.parse_args(argv)
    peers = [k for k in args.peers.split(",") if k]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        p.error(f"--peers: unknown {', '.join(unknown)} (known: {', '.join(PEERS)})")

    import threadpoolctl

    threadpoolctl.threadpool_limits(args.threads)
    workers, unavailable = start_workers(args.threads, peers)
    worker = workers["torch"]  # PyTorch eager: inference, memory, time to accuracy

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or Path(__file__).parent / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine_info(args.threads, worker, os.environ.get(_REEXEC_FLAG, "")),
        "args": vars(args) | {"out": str(out_dir)},
    }
    results["machine"]["peers"] = {k: w.call("info") for k, w in workers.items()}
    results["machine"]["unavailable_peers"] = unavailable
    if results["machine"]["unset_env"]:
        print(f"bench: ran with {results['machine']['unset_env']} removed from the environment")
    warn = busy_warning(results["machine"]["load_average_start"][0], None, args.threads)
    if warn:
        print(f"bench: {warn}", flush=True)

    if args.quick:
        n_head, n_grid, rounds, grid_rounds, sk_rounds = 1024, 512, 2, 1, 1
        grid = [(64, 128)]
        head = (64, 128)
        widths, n_scale, n_lin = [32, 64], 512, (256, 512)
        n_inf, n_mem = 1000, 2000
    else:
        n_head, n_grid = 60000, args.grid_samples
        rounds, grid_rounds = args.repeats, args.grid_repeats
        sk_rounds = max(1, (args.repeats + 1) // 2)
        grid = [(H, B) for H in (512, 1024) for B in (32, 128, 512)]
        head = (512, 128)
        widths, n_scale, n_lin = [128, 256, 512, 1024, 2048, 4096], 6400, (15000, 60000)
        n_inf, n_mem = 10000, 60000

    X, y = make_data(n_head)
    results["training"] = []
    for H, B in grid:
        is_head = (H, B) == head
        print(f"training H={H} batch={B} ...", flush=True)
        n = n_head if is_head else n_grid
        r = training_section(
            X[:n],
            y[:n],
            H,
            B,
            rounds if is_head else grid_rounds,
            sk_rounds if is_head else 1,
            with_fit=is_head,
            workers=workers,
        )
        r["headline"] = is_head
        results["training"].append(r)
    del X, y
    write_json(results, out_dir)  # partial, in case
    headline = next(r for r in results["training"] if r["headline"])

    print("fused kernels' start-up ...", flush=True)
    results["compile"] = compile_section()
    print("inference ...", flush=True)
    results["inference"] = inference_section(head[0], n_inf, rounds, worker)
    print("memory ...", flush=True)
    results["memory"] = memory_section(n_mem, head[0], head[1])
    write_json(results, out_dir)
    print("width scaling ...", flush=True)
    results["scaling"] = scaling_section(widths, n_scale, head[1], max(2, grid_rounds), n_lin)
    write_json(results, out_dir)
    if not args.skip_busy:
        print("busy machine (one core kept busy) ...", flush=True)
        results["busy"] = busy_section(
            2 if args.quick else None,
            n_grid,
            *head,
            1 if args.quick else grid_rounds,
            worker,
        )
        write_json(results, out_dir)
    if not args.skip_tta and not args.quick:
        print("time to accuracy ...", flush=True)
        results["time_to_accuracy"] = tta_section(args.tta_epochs, 0.90, workers)
    for w in workers.values():
        w.close()
    results["targets"] = targets(
        headline, results["memory"], results.get("busy"), results.get("time_to_accuracy")
    )
    results["machine"]["load_average_end"] = os.getloadavg()
    results["wall_seconds"] = time.perf_counter() - t_start

    table = write_report(results, out_dir)
    print()
    print(table)
    print(
        f"\nwrote {out_dir}/results.json, results.png, table.txt in {results['wall_seconds']:.0f} s"
    )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2], int(sys.argv[3]))
    else:
        main()
