"""Max-norm (issue 15): hand computation, PyTorch's renorm, in the training loop."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from backprop import MLP
from backprop.config import TrainConfig
from backprop.constraints import MaxNorm
from backprop.training import fit


def test_max_norm_by_hand():
    # Column 0 has norm 5 (3-4-5) and is scaled to norm 2; column 1 (norm sqrt(2)) and the
    # zero column stay; the output layer W2 is never touched.
    W1 = np.array([[3.0, 1.0, 0.0], [4.0, 1.0, 0.0]])
    W2 = np.full((3, 2), 10.0)
    params = {"W1": W1, "b1": np.zeros(3), "W2": W2, "b2": np.zeros(2)}
    MaxNorm(params, 2, 2.0)()
    np.testing.assert_allclose(params["W1"], [[1.2, 1.0, 0.0], [1.6, 1.0, 0.0]], rtol=1e-15)
    assert params["W1"] is W1  # in place
    np.testing.assert_array_equal(W2, 10.0)


def test_max_norm_constrains_every_hidden_layer_and_allocates_nothing_new():
    rng = np.random.default_rng(0)
    params = {f"W{l}": rng.normal(0, 3, s) for l, s in enumerate([(6, 5), (5, 4), (4, 3)], 1)}
    before = {k: v.copy() for k, v in params.items()}
    mn = MaxNorm(params, 3, 1.5)
    buffers = [id(b) for b in mn._norms]
    mn()
    mn()  # a projection: applying it twice changes nothing more
    assert [id(b) for b in mn._norms] == buffers
    for k in ("W1", "W2"):
        norms = np.linalg.norm(params[k], axis=0)
        assert norms.max() <= 1.5 * (1 + 1e-12)
        old = np.linalg.norm(before[k], axis=0)
        expected = before[k] * np.minimum(1, 1.5 / old)
        np.testing.assert_allclose(params[k], expected, rtol=1e-13)
    np.testing.assert_array_equal(params["W3"], before["W3"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_norm_matches_torch_renorm(torch: ModuleType, dtype):
    rng = np.random.default_rng(1)
    W = rng.normal(0, 1, (30, 20)).astype(dtype)
    W[:, :5] *= 0.05  # some columns below the bound, some above
    params = {"W1": W.copy(), "W2": np.ones((20, 2), dtype)}
    MaxNorm(params, 2, 2.0)()
    ref = torch.renorm(torch.tensor(W), p=2, dim=1, maxnorm=2.0).numpy()
    # renorm divides by norm + 1e-7: equal to that relative precision
    np.testing.assert_allclose(params["W1"], ref, rtol=1e-6 if dtype == np.float32 else 1e-7)


@pytest.mark.parametrize("c", [0, -1.0, float("nan"), float("inf"), "2"])
def test_bad_bounds_are_refused(c):
    with pytest.raises(ValueError, match="max_norm"):
        MaxNorm({"W1": np.ones((2, 2))}, 2, c)
    with pytest.raises(ValueError, match="max_norm"):
        TrainConfig(max_norm=c).validate()


def blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(0, 1, (n, 5)).astype(np.float32)
    X[np.arange(n), y] += 4
    return X, y


def test_training_with_max_norm_keeps_the_hidden_columns_bounded():
    X, y = blobs()
    cfg = dict(hidden=(16, 8), epochs=5, batch_size=32, lr=0.05, weight_decay=0.0)
    free = MLP([5, 16, 8, 3], seed=0)
    fit(free, X, y, config=TrainConfig(**cfg), progress=False)
    assert np.linalg.norm(free.params["W1"], axis=0).max() > 1.0  # the bound binds
    net = MLP([5, 16, 8, 3], seed=0)
    fit(net, X, y, config=TrainConfig(**cfg, max_norm=1.0), progress=False)
    for k in ("W1", "W2"):
        assert np.linalg.norm(net.params[k].astype(np.float64), axis=0).max() <= 1.0 + 1e-6, k


def test_cli_max_norm_and_label_smoothing_flags_reach_the_config(tmp_path):
    import json

    from backprop import cli

    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--hidden", "16", "--epochs", "2", "--quiet"]
    code = cli.main([*argv, "--max-norm", "3", "--label-smoothing", "0.1", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["max_norm"], config["label_smoothing"]) == (3.0, 0.1)
