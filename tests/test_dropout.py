"""Inverted dropout in the engine: finite differences and PyTorch with the same masks,
training reproducible from the seed and across a resume, prediction never drops."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from backprop import MLP
from backprop.config import TrainConfig
from backprop.gradcheck import check_gradients, random_network_problem, relative_error
from backprop.training import fit

SIZES = [7, 6, 5, 3]  # inputs, two hidden layers, outputs


def scaled_masks(n: int, sizes: list[int], keep: float, seed: int) -> list[np.ndarray]:
    """Fixed masks M / keep: one for the inputs and one per hidden layer."""
    rng = np.random.default_rng(seed)
    widths = sizes[:-1]
    return [(rng.random((n, w)) < keep) / keep for w in widths]


def dropped_loss(net: MLP, X: np.ndarray, y: np.ndarray, masks: list[np.ndarray]) -> float:
    """J with the masks applied by hand, written from the definition (no engine code):
    A(0) = X * M(0), A(l) = f(A(l-1) W(l) + b(l)) * M(l), scores, then the loss."""
    from backprop.layers import ACTIVATIONS
    from backprop.losses import LOSSES

    f = ACTIVATIONS[net.activation]
    A = X * masks[0]
    for l in range(1, net.n_layers + 1):
        Z = A @ net.params[f"W{l}"] + net.params[f"b{l}"]
        if l < net.n_layers:
            out = np.empty_like(Z)
            f.f(Z, out)
            A = out * masks[l]
        else:
            A = Z
    return LOSSES[net.loss](A, y)[0]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "squared_error"])
def test_dropout_gradients_pass_finite_differences_with_a_fixed_mask(activation, loss):
    net, X, y = random_network_problem(SIZES, activation, loss, n=9, seed=4)
    masks = scaled_masks(9, SIZES, keep=0.6, seed=1)
    J, grads = net.loss_and_grads(X, y, masks=masks)
    assert J == pytest.approx(dropped_loss(net, X, y, masks), rel=1e-12)
    errors = check_gradients(lambda: dropped_loss(net, X, y, masks), net.params, grads)
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_dropout_matches_pytorch_with_the_same_mask(torch: ModuleType, activation: str) -> None:
    net, X, y = random_network_problem(SIZES, activation, "softmax_cross_entropy", n=9, seed=5)
    masks = scaled_masks(9, SIZES, keep=0.7, seed=2)
    J, grads = net.loss_and_grads(X, y, masks=masks)
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.params.items()
    }
    f = {"relu": torch.relu, "tanh": torch.tanh}[activation]
    h = torch.tensor(X) * torch.tensor(masks[0])
    for l in range(1, net.n_layers + 1):
        h = h @ params[f"W{l}"] + params[f"b{l}"]
        if l < net.n_layers:
            h = f(h) * torch.tensor(masks[l])
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss.backward()
    assert J == pytest.approx(float(loss.detach()), rel=1e-12)
    for k, p in params.items():
        assert relative_error(grads[k], p.grad.numpy()) <= 1e-10, k


def test_masks_of_ones_change_nothing():
    net, X, y = random_network_problem(SIZES, "relu", "softmax_cross_entropy", n=9, seed=6)
    ones = [np.ones((9, w)) for w in SIZES[:-1]]
    J0, g0 = net.loss_and_grads(X, y)
    J1, g1 = net.loss_and_grads(X, y, masks=ones)
    assert J0 == J1
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])


def test_a_wrong_number_of_masks_is_refused():
    net, X, y = random_network_problem(SIZES, "relu", "softmax_cross_entropy", n=9, seed=6)
    with pytest.raises(ValueError, match="masks must have 3 entries"):
        net.loss_and_grads(X, y, masks=[None])


def blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(0, 1, (n, 5)).astype(np.float32)
    X[np.arange(n), y] += 2
    return X, y


def test_training_with_dropout_is_reproducible_and_differs_from_without():
    X, y = blobs()
    cfg = TrainConfig(hidden=(16,), epochs=3, batch_size=32, dropout=0.5, input_dropout=0.2)
    runs = []
    for _ in range(2):
        net = MLP([5, 16, 3], seed=0)
        fit(net, X, y, config=cfg, progress=False)
        runs.append(net.params["W1"].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    plain = MLP([5, 16, 3], seed=0)
    fit(plain, X, y, config=TrainConfig(hidden=(16,), epochs=3, batch_size=32), progress=False)
    assert not np.array_equal(runs[0], plain.params["W1"])


def test_dropout_run_resumes_bit_for_bit(tmp_path):
    from backprop.callbacks import Callback

    class StopAfter2(Callback):
        def on_epoch_end(self, epoch, log, trainer):
            if epoch == 2:
                raise KeyboardInterrupt

    X, y = blobs()
    cfg = TrainConfig(hidden=(16,), epochs=4, batch_size=32, dropout=0.3)
    full = MLP([5, 16, 3], seed=0)
    fit(full, X, y, X[:40], y[:40], config=cfg, progress=False)
    ck = tmp_path / "ck.safetensors"
    with pytest.raises(KeyboardInterrupt):
        fit(
            MLP([5, 16, 3], seed=0),
            X,
            y,
            X[:40],
            y[:40],
            config=cfg,
            callbacks=[StopAfter2()],
            checkpoint=ck,
            progress=False,
        )
    resumed = MLP([5, 16, 3], seed=0)
    fit(resumed, X, y, X[:40], y[:40], config=cfg, checkpoint=ck, resume=True, progress=False)
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])


def test_a_model_trained_with_dropout_predicts_deterministically():
    from backprop.data import load_dataset
    from backprop.run import train

    ds = load_dataset("digits")
    model, _ = train(ds, TrainConfig(hidden=(32,), epochs=2, dropout=0.5), progress=False)
    first = model.predict_proba(ds.X_test)
    np.testing.assert_array_equal(first, model.predict_proba(ds.X_test))
    assert model.config["dropout"] == 0.5  # recorded in the model file's metadata


def test_cli_dropout_and_keep_flags_reach_the_config_and_bad_values_are_one_line(tmp_path):
    import contextlib
    import io
    import json

    from backprop import cli

    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--hidden", "16", "--epochs", "2", "--quiet"]
    code = cli.main(
        [*argv, "--dropout", "0.25", "--input-dropout", "0.1", "--keep", "last", "--out", str(out)]
    )
    assert code == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["dropout"], config["input_dropout"], config["keep"]) == (0.25, 0.1, "last")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main([*argv, "--dropout", "1.0", "--out", str(tmp_path / "bad")])
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "--dropout" in lines[0]


def test_estimator_dropout_trains_reproducibly_and_predicts_deterministically():
    from sklearn.base import clone
    from sklearn.datasets import load_digits

    from backprop.estimators import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    kw = {"hidden_layer_sizes": (32,), "max_iter": 5, "random_state": 0}
    with pytest.warns(Warning):  # 5 epochs: a ConvergenceWarning, on purpose
        a = MLPClassifier(dropout=0.5, **kw).fit(X, y)
    with pytest.warns(Warning):
        b = clone(a).fit(X, y)
    with pytest.warns(Warning):
        plain = MLPClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], plain.coefs_[0])
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    with pytest.raises(ValueError, match="dropout needs solver"):
        MLPClassifier(dropout=0.5, solver="lbfgs").fit(X, y)
