"""The benchmark's report: the printed table (table.txt), the targets, results.json and
the chart (results.png)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from timing import busy_warning


def fmt_table(results: dict[str, Any]) -> str:
    """The printed summary: training grid, targets, inference, memory, scaling, TTA."""
    lines = []
    m = results["machine"]
    lines.append(
        f"machine: {m['cpu']}, {m['cores']} cores, threads={m['threads']}; numpy {m['numpy']}, "
        f"torch {m['torch']}, scikit-learn {m['sklearn']}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in m['load_average_start'])}"
        + (
            f", at end {' '.join(f'{x:.2f}' for x in m['load_average_end'])}"
            if "load_average_end" in m
            else ""
        )
    )
    warn = busy_warning(
        m["load_average_start"][0],
        m["load_average_end"][0] if "load_average_end" in m else None,
        m["threads"],
    )
    if warn:
        lines.append(warn)
    lines.append("")
    lines.append("training throughput (samples/s, median over rounds); ratios = paired medians")
    hdr = (
        f"{'H':>5} {'batch':>5} {'opt':>4} | {'floor':>8} {'backprop':>9} {'fit':>9} "
        f"{'torch':>8} {'sklearn':>8} | {'of floor':>8} {'x torch':>7} {'x sklearn':>9}"
    )
    lines += [hdr, "-" * len(hdr)]
    for r in results["training"]:
        sps = r["samples_per_s"]
        for opt in ("sgd", "adam"):
            q = r["ratios"]
            fit = sps.get(f"backprop_fit_{opt}")
            lines.append(
                f"{r['H']:>5} {r['batch']:>5} {opt:>4} | {sps['gemm_floor']:>8.0f} "
                f"{sps[f'backprop_{opt}']:>9.0f} {'' if fit is None else f'{fit:.0f}':>9} "
                f"{sps[f'torch_{opt}']:>8.0f} {sps[f'sklearn_{opt}']:>8.0f} | "
                f"{q[f'{opt}_floor_fraction']:>8.3f} {q[f'{opt}_vs_torch']:>7.2f} "
                f"{q[f'{opt}_vs_sklearn']:>9.2f}"
            )
    lines.append("")
    head = next(r for r in results["training"] if r["headline"])
    lines.append(f"targets (784-{head['H']}-10, batch {head['batch']}, SGD and Adam):")
    for t in results["targets"]:
        ok = "PASS" if t["met"] else "MISS"
        lines.append(f"  [{ok}] {t['name']}: {t['value']:.3f} (target {t['op']} {t['target']})")
    inf = results.get("inference")
    if inf:
        rps = inf["rows_per_s"]
        lines.append("")
        lines.append(
            f"inference ({inf['rows']} rows, H={inf['H']}): backprop {rps['backprop']:.0f} rows/s, "
            f"torch {rps['torch']:.0f}, sklearn {rps['sklearn']:.0f}; backprop is "
            f"{inf['ratios']['vs_torch']:.2f}x torch, {inf['ratios']['vs_sklearn']:.2f}x sklearn"
        )
    mem = results.get("memory")
    if mem:
        lines.append("")
        for kind in ("engine", "fit"):
            e = mem[kind]
            lines.append(
                f"peak RSS ({kind}, {mem['rows']} x 784 float32 = {e['data_mb']:.0f} MB): "
                f"{e['peak_rss_mb']:.0f} MB (limit 1.5 x data + 100 = {e['limit_mb']:.0f} MB; "
                f"python+numpy alone {e['import_rss_mb']:.0f} MB)"
            )
    sc = results.get("scaling")
    if sc:
        lines.append("")
        lines.append(f"width scaling (batch {sc['batch']}, SGD): us per sample, floor fraction")
        for w in sc["widths"]:
            lines.append(
                f"  H={w['H']:>5}: floor {w['floor_us_per_sample']:8.2f}  backprop "
                f"{w['backprop_us_per_sample']:8.2f}  fraction {w['floor_fraction']:.3f}"
            )
        li = sc["linearity"]
        lines.append(
            f"  linearity: time per sample at n={li['n_big']} / at n={li['n_small']} = "
            f"{li['per_sample_time_big_over_small']:.3f}"
        )
    ng = head.get("non_gemm_us_per_step")
    if ng:
        lines.append("")
        lines.append(
            "time beyond the GEMM floor per step (us; elementwise, gather, Python), "
            "fused kernels and the NumPy reference path:"
        )
        q = head["ratios"]
        for opt in ("sgd", "adam"):
            lines.append(
                f"  {opt:>4}: fused {ng[f'backprop_{opt}']:7.1f} (floor fraction "
                f"{q[f'{opt}_floor_fraction']:.3f}); numpy {ng[f'backprop_numpy_{opt}']:7.1f} "
                f"(floor fraction {q[f'{opt}_numpy_floor_fraction']:.3f}); fused is "
                f"{q[f'{opt}_fused_over_numpy']:.2f}x numpy"
            )
    comp = results.get("compile")
    if comp:
        lines.append("")
        lines.append(
            "fused kernels, start-up in a fresh process (s): import numba "
            f"{comp['import_numba']:.2f}; first step compiled cold {comp['cold']:.2f}, "
            f"from numba's cache {comp['cached']:.2f}"
        )
    busy = results.get("busy")
    if busy:
        lines.append("")
        la = busy["load_average_busy_start"][0], busy["load_average_busy_end"][0]
        lines.append(
            f"busy machine: one core kept busy by another process (load average {la[0]:.2f} "
            f"-> {la[1]:.2f}); one run each"
        )
        lines.append(
            f"  {'digits default recipe (s)':<28} {'idle':>8} {'busy':>8} {'busy/idle':>9}"
        )
        for k in ("backprop", "torch", "sklearn"):
            i, b = busy["digits_idle"][k], busy["digits_busy"][k]
            lines.append(f"  {k:<28} {i:>8.2f} {b:>8.2f} {b / i:>9.2f}")
        st = busy["step_busy"]
        sps = st["samples_per_s"]
        lines.append(
            f"  784-{st['H']}-10 batch {st['batch']} step, busy (samples/s): floor "
            f"{sps['gemm_floor']:.0f}; "
            + "; ".join(
                f"{opt} backprop {sps[f'backprop_{opt}']:.0f}, torch {sps[f'torch_{opt}']:.0f}, "
                f"sklearn {sps[f'sklearn_{opt}']:.0f}"
                for opt in ("sgd", "adam")
            )
        )
    tta = results.get("time_to_accuracy")
    if tta:
        lines.append("")
        lines.append(f"time to {tta['target']:.2f} test accuracy on fashion-mnist (seconds):")
        for k in ("backprop", "backprop_before", "torch", "torch_compile", "jax", "sklearn"):
            if k not in tta:
                continue
            e = tta[k]
            hit = e["seconds_to_target"]
            lines.append(
                f"  {k:>15}: {'not reached' if hit is None else f'{hit:.1f}'}; "
                f"final accuracy {e['final_test_accuracy']:.4f} after {e['total_seconds']:.1f} s"
            )
    return "\n".join(lines)


def targets(
    headline: dict[str, Any],
    memory: dict[str, Any] | None,
    busy: dict[str, Any] | None = None,
    tta: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The issue's targets: the headline configuration, the busy case, time to accuracy."""
    q = headline["ratios"]
    # Against PyTorch the target is relative to what the machine allows (issue 12): 0.95 of
    # the ceiling, PyTorch's time over the GEMM floor's (the floor's lead over PyTorch
    # differs by CPU).
    ts = [
        ("SGD step speed / GEMM floor speed", q["sgd_floor_fraction"], ">=", 0.95),
        ("Adam step time / SGD step time", q["adam_over_sgd_time"], "<=", 1.10),
        (
            "SGD throughput vs PyTorch eager",
            q["sgd_vs_torch"],
            ">=",
            round(0.95 * q["sgd_torch_ceiling"], 3),
        ),
        ("  ceiling: PyTorch SGD time / GEMM floor", q["sgd_torch_ceiling"], ">=", 0.0),
        (
            "Adam throughput vs PyTorch eager",
            q["adam_vs_torch"],
            ">=",
            round(0.95 * q["adam_torch_ceiling"], 3),
        ),
        ("  ceiling: PyTorch Adam time / GEMM floor", q["adam_torch_ceiling"], ">=", 0.0),
        ("Adam throughput vs sklearn adam", q["adam_vs_sklearn"], ">=", 2.5),
        ("  ceiling: sklearn adam time / GEMM floor", q["adam_sklearn_ceiling"], ">=", 2.5),
        ("SGD throughput vs sklearn sgd", q["sgd_vs_sklearn"], ">=", 1.7),
    ]
    if memory:
        e = memory["fit"]
        ts.append(
            ("peak RSS of fit / (1.5 x data + 100 MB)", e["peak_rss_mb"] / e["limit_mb"], "<=", 1.0)
        )
    if busy:
        d = busy["digits_busy"]
        ts.append(
            (
                "digits, one core busy: time / idle time",
                busy["digits_busy_over_idle"]["backprop"],
                "<=",
                1.5,
            )
        )
        ts.append(
            (
                "digits, one core busy: PyTorch time / backprop time",
                d["torch"] / d["backprop"],
                ">=",
                1.0,
            )
        )
    if tta and "backprop_before" in tta:
        now, before = (
            tta["backprop"]["seconds_to_target"],
            tta["backprop_before"]["seconds_to_target"],
        )
        if now is not None and before is not None:
            ts.append(
                (
                    "fashion-mnist time to 0.90 / the default's before issue 12",
                    now / before,
                    "<=",
                    0.75,
                )
            )
    # Issue 24, appended so that the rows above keep their indices in recorded results.
    for opt in ("sgd", "adam"):
        if f"{opt}_vs_fastest_peer" in q:  # a compiled peer ran
            ts.append(
                (
                    f"{opt.upper() if opt == 'sgd' else 'Adam'} step vs the fastest of PyTorch "
                    "eager, torch.compile, JAX jit (their time / backprop's)",
                    q[f"{opt}_vs_fastest_peer"],
                    ">=",
                    1.2,
                )
            )
    kinds = ("torch", "torch_compile", "jax")
    peers = [tta[k]["seconds_to_target"] for k in kinds if tta and k in tta]
    peers = [t for t in peers if t is not None]
    if tta and peers and tta["backprop"]["seconds_to_target"] is not None:
        ts.append(
            (
                "fashion-mnist time to 0.90 / the fastest peer's, same recipe",
                tta["backprop"]["seconds_to_target"] / min(peers),
                "<=",
                0.75,
            )
        )
    return [
        {
            "name": name,
            "value": value,
            "op": op,
            "target": target,
            "met": value >= target if op == ">=" else value <= target,
        }
        for name, value, op, target in ts
    ]


def chart(results: dict[str, Any], path: Path) -> None:
    """PNG: throughput per configuration, floor fraction, and width scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ax = axes[0]
    rows = results["training"]
    labels = [f"{r['H']}/{r['batch']}/{opt}" for r in rows for opt in ("sgd", "adam")]
    xs = np.arange(len(labels))
    w = 0.27
    for i, (k, color) in enumerate(
        (("backprop", "tab:blue"), ("torch", "tab:orange"), ("sklearn", "tab:green"))
    ):
        vals = [r["samples_per_s"][f"{k}_{opt}"] for r in rows for opt in ("sgd", "adam")]
        ax.bar(xs + (i - 1) * w, vals, w, label=k, color=color)
    floor = [r["samples_per_s"]["gemm_floor"] for r in rows for _ in ("sgd", "adam")]
    ax.plot(xs, floor, "k_", markersize=14, label="GEMM floor")
    ax.set_xticks(xs, labels, rotation=60, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("training samples / s")
    ax.set_title("training throughput (H / batch / optimiser)")
    ax.legend(fontsize=8)

    ax = axes[1]
    for opt, color in (("sgd", "tab:blue"), ("adam", "tab:red")):
        ax.plot(
            xs[::2] if opt == "sgd" else xs[1::2],
            [r["ratios"][f"{opt}_floor_fraction"] for r in rows],
            "o",
            color=color,
            label=f"backprop {opt}",
        )
    ax.axhline(0.95, color="k", ls="--", lw=1, label="target 0.95")
    ax.set_xticks(xs, labels, rotation=60, fontsize=7)
    ax.set_ylabel("GEMM floor time / step time")
    ax.set_title("fraction of the GEMM floor speed")
    ax.legend(fontsize=8)

    ax = axes[2]
    sc = results.get("scaling")
    if sc:
        Hs = [w_["H"] for w_ in sc["widths"]]
        ax.loglog(
            Hs, [w_["floor_us_per_sample"] for w_ in sc["widths"]], "k--o", label="GEMM floor"
        )
        ax.loglog(
            Hs, [w_["backprop_us_per_sample"] for w_ in sc["widths"]], "b-o", label="backprop SGD"
        )
        ax.set_xticks(Hs, [str(h) for h in Hs])  # plain labels, no crowded minor ticks
        ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel("hidden width H")
        ax.set_ylabel("microseconds per training sample")
        ax.set_title(f"width scaling (batch {sc['batch']})")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{results['machine']['cpu']}, {results['machine']['threads']} threads", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_json(results: dict[str, Any], out_dir: Path) -> None:
    """Write ``results.json`` into ``out_dir`` (also partway, in case a later section fails)."""
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=float))


def write_report(results: dict[str, Any], out_dir: Path) -> str:
    """Write ``results.json``, ``results.png`` and ``table.txt`` into ``out_dir``; the table."""
    write_json(results, out_dir)
    chart(results, out_dir / "results.png")
    table = fmt_table(results)
    (out_dir / "table.txt").write_text(table + "\n")
    return table
