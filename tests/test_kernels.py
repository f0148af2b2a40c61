"""The fused kernels (`backprop.kernels`) against the NumPy reference they replace.

Tolerances: float64 1e-12 and float32 1e-6 relative (issue 12); the optimiser kernels
repeat NumPy's arithmetic in the same order and in practice agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from backprop import MLP, kernels
from backprop.gradcheck import relative_error
from backprop.optim import OPTIMIZERS, Optimizer
from backprop.trainer import Trainer

TOL = {np.float32: 1e-6, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba does not import")


def _params(dtype: type, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.standard_normal((37, 23)).astype(dtype),
        "b1": rng.standard_normal(23).astype(dtype),
        "W2": rng.standard_normal((23, 5)).astype(dtype),
        "b2": rng.standard_normal(5).astype(dtype),
    }


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_optimizer_kernel_matches_numpy_update(dtype: type, name: str, weight_decay: float) -> None:
    """30 steps with varying gradients and a cosine-like changing lr: the same weights and state."""
    runs = []
    for fused in (False, True):
        params = _params(dtype)
        opt = OPTIMIZERS[name](params, 0.05, momentum=0.9, weight_decay=weight_decay)
        opt.fused = fused
        has_kernel = type(opt)._update_fused is not Optimizer._update_fused
        assert opt.fused is (fused and has_kernel)  # no kernel: the NumPy update, still equal
        rng = np.random.default_rng(1)
        for _ in range(30):
            opt.step({k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()})
        runs.append((params, opt.state_dict()))
    (p_np, s_np), (p_fu, s_fu) = runs
    start = _params(dtype)
    for k in p_np:
        assert not np.array_equal(p_np[k], start[k])  # the steps did something
        assert _relative(p_fu[k], p_np[k]) <= TOL[dtype], k
    for k in s_np:
        assert (
            _relative(
                np.asarray(s_fu[k]),
                np.asarray(s_np[k]),
            )
            <= TOL[dtype]
        ), k


def test_optimizer_without_kernel_or_noncontiguous_stays_numpy() -> None:
    params = {"W": np.zeros((4, 6), np.float64)[:, ::2]}  # a strided view: not contiguous
    opt = OPTIMIZERS["adam"](params, 0.1, momentum=0.0, weight_decay=0.0)
    opt.fused = True
    assert opt.fused is False
    opt.step({"W": np.ones((4, 3))})
    assert np.all(params["W"] < 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_network_fused_pass_matches_numpy(
    dtype: type, activation: str, weighted: bool, dropout: bool
) -> None:
    rng = np.random.default_rng(3)
    net = MLP([20, 31, 17, 6], activation=activation, dtype=dtype, seed=2)
    n = 19
    X = rng.standard_normal((n, 20)).astype(dtype)
    y = rng.integers(0, 6, n)
    w = rng.random(n) + 0.1 if weighted else None
    masks = None
    if dropout:
        masks = [(rng.random((n, k)) < 0.7).astype(dtype) / dtype(0.7) for k in (20, 31, 17)]
    J0, g0 = net.loss_and_grads(X, y, sample_weight=w, masks=masks)
    g0 = {k: v.copy() for k, v in g0.items()}
    net.fused = True
    J1, g1 = net.loss_and_grads(X, y, sample_weight=w, masks=masks)
    assert J1 == pytest.approx(J0, rel=TOL[dtype])
    for k in g0:
        assert relative_error(g1[k], g0[k]) <= TOL[dtype], k


def test_fused_softmax_cross_entropy_is_the_notes_delta() -> None:
    """Worked by hand: scores (0, ln 3) and label 1 give p = (1/4, 3/4), delta = (p - y)/n."""
    from backprop.losses import softmax_cross_entropy_fused

    S = np.array([[0.0, np.log(3.0)], [0.0, 0.0]])
    J, delta = softmax_cross_entropy_fused(S, np.array([1, 0]))
    assert J == pytest.approx((-np.log(0.75) - np.log(0.5)) / 2, rel=1e-14)
    np.testing.assert_allclose(delta, [[0.25 / 2, -0.25 / 2], [-0.5 / 2, 0.5 / 2]], rtol=1e-14)
    np.testing.assert_array_equal(S, [[0.0, np.log(3.0)], [0.0, 0.0]])  # out=None: a copy


def test_sparse_input_and_label_smoothing_take_the_fused_path_safely() -> None:
    rng = np.random.default_rng(4)
    net = MLP([30, 12, 4], dtype=np.float64, seed=0)
    X = sp.random(15, 30, density=0.2, format="csr", random_state=0, dtype=np.float64)
    y = rng.integers(0, 4, 15)
    for kw in ({}, {"label_smoothing": 0.1}):
        net.fused = False
        J0, g0 = net.loss_and_grads(X, y, **kw)
        g0 = {k: v.copy() for k, v in g0.items()}
        net.fused = True
        J1, g1 = net.loss_and_grads(X, y, **kw)
        assert J1 == pytest.approx(J0, rel=1e-12)
        for k in g0:
            assert relative_error(g1[k], g0[k]) <= 1e-12, k


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adamw"])
def test_trainer_fused_run_matches_numpy_run(dtype: type, optimizer: str) -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 16)).astype(dtype)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    weights = []
    for choice in ("numpy", "fused"):
        net = MLP([16, 24, 3], dtype=dtype, seed=1)
        opt = OPTIMIZERS[optimizer](net.params, 0.01, momentum=0.9, weight_decay=0.01)
        trainer = Trainer(net, opt, batch_size=32, seed=0)
        trainer.fit(X, y, epochs=3, kernels=choice)
        assert trainer.fused is (choice == "fused")
        assert net.fused is False and opt.fused is False  # only inside fit
        weights.append(net.params)
    for k in weights[0]:
        # The softmax's exp may differ in the last bit, and 30 steps carry it along.
        assert relative_error(weights[1][k], weights[0][k]) <= 100 * TOL[dtype], k


def test_use_fused_rule_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    big = int(kernels.FUSED_MIN_WORK)
    assert kernels.use_fused(1000, big // 1000, env={}) is True
    assert kernels.use_fused(1000, big // 1000 - 1, env={}) is False
    # The digits default (64-1024-10, 1500 steps) stays NumPy: numba would not pay.
    assert kernels.use_fused(64 * 1024 + 1024 + 1024 * 10 + 10, 1500, env={}) is False
    # Fashion-MNIST's (784-1024-10, 9 epochs of 422 batches) is fused.
    assert kernels.use_fused(784 * 1024 + 1024 + 10250, 9 * 422, env={}) is True
    assert kernels.use_fused(10, 10, env={"BACKPROP_KERNELS": "fused"}) is True
    assert kernels.use_fused(10**9, 10**9, env={"BACKPROP_KERNELS": "numpy"}) is False
    assert kernels.use_fused(10, 10, "fused", env={"BACKPROP_KERNELS": "numpy"}) is True
    with pytest.raises(
        kernels.KernelsError,
        match=r"^BACKPROP_KERNELS must be one of auto, numpy, fused, got 'fast'$",
    ):
        kernels.use_fused(10, 10, env={"BACKPROP_KERNELS": "fast"})
    with pytest.raises(kernels.KernelsError, match=r"^kernels must be one of"):
        kernels.use_fused(10, 10, "gpu", env={})


def test_without_numba_auto_falls_back_and_fused_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(kernels, "_build", broken)
    monkeypatch.setattr(kernels, "_kernels", None)
    monkeypatch.setattr(kernels, "_import_error", None)
    assert kernels.available() is False
    assert kernels.use_fused(10**9, 10**9, env={}) is False
    with pytest.raises(kernels.KernelsError, match="need numba, which did not import: No module"):
        kernels.use_fused(10, 10, "fused", env={})


def test_a_small_run_never_imports_numba() -> None:
    """The digits-sized default stays on NumPy: numba's import would cost more than it saves."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from backprop import MLP\n"
        "from backprop.optim import AdamW\n"
        "from backprop.trainer import Trainer\n"
        "net = MLP([64, 1024, 10])\n"
        "t = Trainer(net, AdamW(net.params), batch_size=128)\n"
        "X = np.random.default_rng(0).standard_normal((1400, 64)).astype(np.float32)\n"
        "t.fit(X, np.arange(1400) % 10, epochs=2)\n"
        "print(t.fused, 'numba' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BACKPROP_KERNELS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_no_writable_cache_directory_compiles_without_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = kernels._build
    calls: list[bool] = []

    def no_locator(cache: bool = True) -> object:
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function 'adam': no locator available for file")
        return real(cache=False)

    monkeypatch.setattr(kernels, "_build", no_locator)
    monkeypatch.setattr(kernels, "_kernels", None)
    monkeypatch.setattr(kernels, "_import_error", None)
    assert kernels.available() is True
    assert calls == [True, False]
    p, g = np.ones(5), np.full(5, 2.0)
    kernels.get().sgd(p, g, p, 0.5, 0.0, 0.0, 0.0, 0)
    np.testing.assert_array_equal(p, np.zeros(5))


def test_a_pickled_fused_optimizer_updates_its_own_arrays() -> None:
    import pickle

    params = _params(np.float64)
    opt = OPTIMIZERS["adamw"](params, 0.1, momentum=0.0, weight_decay=0.0)
    opt.fused = True
    grads = {k: np.ones_like(p) for k, p in params.items()}
    opt.step(grads)  # builds the flat views
    copy = pickle.loads(pickle.dumps(opt))
    before = {k: p.copy() for k, p in copy.params.items()}
    copy.step(grads)
    for k, p in copy.params.items():
        assert not np.array_equal(p, before[k]), k  # the step reached the unpickled arrays
        assert np.any(copy._state["m"][k] != opt._state["m"][k]), k
