"""The same GridSearchCV over scikit-learn's and backprop's MLPClassifier on digits.

Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/gridsearch.py``
Prints, for each library, the wall time, the best cross-validated accuracy, the best
parameters and the load average; ``docs/estimators.md`` quotes it. 3 folds
(`StratifiedKFold`, shuffled, seed 0), 8 settings (hidden (32,) or (64,), alpha 1e-4 or
1e-2, solver adam or lbfgs), ``max_iter=100``, digits scaled to [0, 1], ``n_jobs=1``.

``--sparse``: the same search on the sparse TF-IDF-like problem of
``benchmarks/sparse_tfidf.py`` (4,000 x 50,000 CSR, 20 classes), hidden (64,), alpha
1e-4 or 1e-2, solver adam, ``max_iter=5`` (4 settings x 3 folds), never densified.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from backprop.estimators import MLPClassifier

GRID = {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2], "solver": ["adam", "lbfgs"]}


SPARSE_GRID = {"hidden_layer_sizes": [(64,)], "alpha": [1e-4, 1e-2], "solver": ["adam"]}


def main(argv: list[str] | None = None) -> None:
    sparse = "--sparse" in (sys.argv[1:] if argv is None else argv)
    if sparse:
        from sparse_tfidf import tfidf_like

        X, y = tfidf_like(4000, 50000, 20)
        grid, max_iter = SPARSE_GRID, 5
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        grid, max_iter = GRID, 100
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
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


if __name__ == "__main__":
    main()
