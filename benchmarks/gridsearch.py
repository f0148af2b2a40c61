"""The same GridSearchCV over scikit-learn's and backprop's MLPClassifier on digits.

Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/gridsearch.py``
Prints, for each library, the wall time, the best cross-validated accuracy, the best
parameters and the load average; ``docs/estimators.md`` quotes it. 3 folds
(`StratifiedKFold`, shuffled, seed 0), 8 settings (hidden (32,) or (64,), alpha 1e-4 or
1e-2, solver adam or lbfgs), ``max_iter=100``, digits scaled to [0, 1], ``n_jobs=1``.

``--sparse``: the same search on the sparse TF-IDF-like problem of
``benchmarks/sparse_tfidf.py`` (4,000 x 50,000 CSR, 20 classes), hidden (64,), alpha
1e-4 or 1e-2, solver adam, ``max_iter=5`` (4 settings x 3 folds), never densified.
``--out FILE``: also write the figures as JSON (``libraries / NAME / seconds``, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from backprop.estimators import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_record, write_record

GRID = {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2], "solver": ["adam", "lbfgs"]}


SPARSE_GRID = {"hidden_layer_sizes": [(64,)], "alpha": [1e-4, 1e-2], "solver": ["adam"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sparse", action="store_true", help="the sparse TF-IDF-like problem")
    ap.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.sparse:
        from sparse_tfidf import tfidf_like

        X, y = tfidf_like(4000, 50000, 20)
        grid, max_iter = SPARSE_GRID, 5
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        grid, max_iter = GRID, 100
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    load_start = os.getloadavg()
    libraries: dict[str, Any] = {}
    for name, estimator in (("scikit-learn", SkMLPClassifier), ("backprop", MLPClassifier)):
        load = os.getloadavg()[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a short max_iter leaves adam unconverged on purpose
            t0 = time.perf_counter()
            model = estimator(max_iter=max_iter, random_state=0)
            search = GridSearchCV(model, grid, cv=cv, n_jobs=1)
            search.fit(X, y)
            seconds = time.perf_counter() - t0
        print(
            f"{name}: {seconds:.1f} s, best {search.best_score_:.4f} {search.best_params_}, "
            f"load {load:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        libraries[name] = {
            "seconds": round(seconds, 2),
            "best_score": round(float(search.best_score_), 4),
            "best_params": {k: str(v) for k, v in search.best_params_.items()},
        }
    if args.out is not None:
        threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        record = {
            "sparse": args.sparse,
            "libraries": libraries,
            "machine": {**machine_record(load_start, os.getloadavg()), **threads},
        }
        write_record(args.out, record)


if __name__ == "__main__":
    main()
