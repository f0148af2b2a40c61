"""The paper model of data-parallel training (docs/scaling.md): where K ranks pay.

One synchronous step on K ranks costs the compute of b/K examples plus one ring
Allreduce of the gradients (`backprop.distributed`; the trainer does not overlap them):

    compute(K) = F(b) / (K * R),   F(b) = 2 b (sum_l d_{l-1} d_l) * 2 + 2 b sum_{l>=2} d_{l-1} d_l
    comm(K)    = 2 (K - 1) / K * P * 4 bytes / bandwidth + 2 (K - 1) * latency

F counts the notes' five products per layer (page 7: Z = A W forward, A^T delta and
delta W^T backward; the first layer needs no delta W^T); P is the parameter count (each
layer's d_{l-1} d_l weights and d_l biases); R is one core's matrix-product rate. The
speed-up is compute(1) / (compute(K) + comm(K)). Prints a Markdown table.

Usage: ``python benchmarks/scaling_model.py [--gflops R] [--batch B]``.
"""

from __future__ import annotations

import argparse
from itertools import pairwise

NETWORKS = {"784-1024-10": [784, 1024, 10], "784-4096-4096-10": [784, 4096, 4096, 10]}
RANKS = [2, 4, 8, 16, 32, 64]
GBITS = [10, 100]
#: Per message of the ring (2 (K-1) of them per Allreduce): a typical Ethernet/TCP MPI.
LATENCY_S = 5e-6


def params(sizes: list[int]) -> int:
    """Weights and biases of the network."""
    return sum(a * b + b for a, b in pairwise(sizes))


def step_flops(sizes: list[int], batch: int) -> float:
    """Floating-point operations of one training step on ``batch`` examples."""
    prods = [a * b for a, b in pairwise(sizes)]
    return 2.0 * batch * (2 * sum(prods) + sum(prods[1:]))


def allreduce_bytes(sizes: list[int], ranks: int) -> float:
    """Bytes each rank sends (and receives) in a ring Allreduce of float32 gradients."""
    return 2 * (ranks - 1) / ranks * params(sizes) * 4


def table(gflops: float, batch: int) -> str:
    """The Markdown table of step times and speed-ups."""
    rows = [
        "| network | parameters | K | MB sent per step | compute ms | "
        + " | ".join(f"comm ms @{g} Gb/s | speed-up @{g} Gb/s" for g in GBITS)
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|---:|" * len(GBITS),
    ]
    for name, sizes in NETWORKS.items():
        t1 = step_flops(sizes, batch) / (gflops * 1e9)
        for k in RANKS:
            compute = t1 / k
            cells = [name, f"{params(sizes):,}", str(k)]
            cells += [f"{allreduce_bytes(sizes, k) / 1e6:.2f}", f"{compute * 1e3:.2f}"]
            for g in GBITS:
                comm = allreduce_bytes(sizes, k) * 8 / (g * 1e9) + 2 * (k - 1) * LATENCY_S
                cells += [f"{comm * 1e3:.2f}", f"{t1 / (compute + comm):.1f}"]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gflops", type=float, default=50.0, help="one core's rate R")
    parser.add_argument("--batch", type=int, default=128, help="global batch b")
    args = parser.parse_args()
    for name, sizes in NETWORKS.items():
        print(
            f"{name}: {params(sizes):,} parameters, "
            f"{step_flops(sizes, args.batch) / 1e9:.3f} GFLOP per step of {args.batch}"
        )
    print()
    print(table(args.gflops, args.batch))


if __name__ == "__main__":
    main()
