"""Sparse input, both libraries: MLPClassifier on a generated TF-IDF-like matrix.

The matrix has the shape statistics of 20newsgroups' TF-IDF (about 150 stored terms per
document, Zipf-distributed term frequencies, rows L2-normalised), scaled down in rows and
vocabulary so one run takes seconds; labels depend on a few class-specific terms, so the
problem is learnable. Same data, hidden layer, solver, epochs and batch size for
scikit-learn's and backprop's MLPClassifier; prints fit time, predict time, accuracy and
the load average (the machine may be shared).

    python benchmarks/sparse_tfidf.py [--rows 4000] [--vocab 50000] [--epochs 5] [--out FILE]

``--out FILE`` also writes the figures as JSON (``libraries / NAME / fit_seconds``, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from backprop.estimators import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_record, write_record


def tfidf_like(n: int, d: int, classes: int, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """A CSR matrix with Zipf term frequencies and per-class topic terms, rows L2-normed."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    nnz = rng.poisson(150, n).clip(10)
    zipf = 1.0 / np.arange(1, d + 1)
    zipf /= zipf.sum()
    topics = rng.integers(0, d, (classes, 30))
    rows, cols = [], []
    for i in range(n):
        common = rng.choice(d, nnz[i], p=zipf)
        topical = rng.choice(topics[y[i]], 15)
        c = np.unique(np.concatenate([common, topical]))
        rows.append(np.full(c.size, i))
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    idf = np.log(n / (1.0 + np.bincount(c, minlength=d)))[c] + 1.0
    X = sp.csr_matrix((idf * rng.integers(1, 4, r.size), (r, c)), shape=(n, d))
    norms = np.sqrt(X.multiply(X).sum(axis=1)).A1
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X), y


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--vocab", type=int, default=50000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    libraries: dict[str, Any] = {}
    X, y = tfidf_like(args.rows + 1000, args.vocab, 20)
    Xtr, ytr, Xte, yte = X[: args.rows], y[: args.rows], X[args.rows :], y[args.rows :]
    print(
        f"X: {Xtr.shape[0]} x {Xtr.shape[1]} CSR, {Xtr.nnz / Xtr.shape[0]:.0f} stored per row "
        f"(density {Xtr.nnz / np.prod(Xtr.shape):.2%}); load average {os.getloadavg()}"
    )
    kw = {"hidden_layer_sizes": (64,), "max_iter": args.epochs, "random_state": 0}
    for name, cls in (("scikit-learn", SkMLPClassifier), ("backprop", MLPClassifier)):
        est = cls(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(Xtr, ytr)
            fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        acc = float((est.predict(Xte) == yte).mean())
        pred = time.perf_counter() - t0
        print(f"{name:13s} fit {fit:6.2f} s  predict {pred:5.3f} s  test accuracy {acc:.4f}")
        libraries[name] = {
            "fit_seconds": round(fit, 3),
            "predict_seconds": round(pred, 4),
            "test_accuracy": round(acc, 4),
        }
    print(f"load average after: {os.getloadavg()}")
    if args.out is not None:
        record = {
            "rows": args.rows,
            "vocab": args.vocab,
            "epochs": args.epochs,
            "libraries": libraries,
            "machine": machine_record(load_start, os.getloadavg()),
        }
        write_record(args.out, record)


if __name__ == "__main__":
    main()
