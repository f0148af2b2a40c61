"""Tests for backprop.optim: hand-computed updates, PyTorch equality, state, validation."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from backprop.optim import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, make_optimizer
from backprop.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    InvScaling,
    OneCycle,
    Schedule,
    StepDecay,
    make_schedule,
)

# Two steps on a 2-element parameter p0 = [1, -2] with gradients g1 = [0.5, 1], g2 = [-1, 2].
P0 = [1.0, -2.0]
G1 = [0.5, 1.0]
G2 = [-1.0, 2.0]


def run_two_steps(make: Callable[[dict[str, np.ndarray]], Optimizer]) -> list[np.ndarray]:
    """Return p after step 1 and after step 2, checking the array is updated in place."""
    p = np.array(P0)
    opt = make({"w": p})
    out = []
    for g in (G1, G2):
        opt.step({"w": np.array(g)})
        assert opt.params["w"] is p
        out.append(p.copy())
    assert opt.t == 2
    return out


# ----------------------------------------------------------------------------------------
# Hand-computed updates


# (optimiser, p after step 1, p after step 2 or None), each worked out in the comment above it.
HAND_CASES = {
    # lr = 0.1: p1 = [1 - 0.05, -2 - 0.1] = [0.95, -2.1]; p2 = [0.95 + 0.1, -2.1 - 0.2]
    "sgd": (lambda ps: SGD(ps, lr=0.1), [0.95, -2.1], [1.05, -2.3]),
    # lr = 0.1, wd = 0.5: g = grad + 0.5 p.
    # step 1: g = [0.5 + 0.5, 1 - 1] = [1, 0]; p1 = [0.9, -2.0]
    # step 2: g = [-1 + 0.45, 2 - 1] = [-0.55, 1]; p2 = [0.9 + 0.055, -2 - 0.1] = [0.955, -2.1]
    "sgd-wd": (lambda ps: SGD(ps, lr=0.1, weight_decay=0.5), [0.9, -2.0], [0.955, -2.1]),
    # lr = 0.1, mu = 0.9. step 1: v = g1 = [0.5, 1]; p1 = [0.95, -2.1]
    # step 2: v = 0.9 [0.5, 1] + [-1, 2] = [-0.55, 2.9]; p2 = [0.95 + 0.055, -2.1 - 0.29]
    "momentum": (lambda ps: SGD(ps, lr=0.1, momentum=0.9), [0.95, -2.1], [1.005, -2.39]),
    # lr = 0.1, mu = 0.9, p -= lr (g + mu v).
    # step 1: v = [0.5, 1]; g + mu v = [0.95, 1.9]; p1 = [1 - 0.095, -2 - 0.19] = [0.905, -2.19]
    # step 2: v = [-0.55, 2.9]; g + mu v = [-1 - 0.495, 2 + 2.61] = [-1.495, 4.61];
    #         p2 = [0.905 + 0.1495, -2.19 - 0.461] = [1.0545, -2.651]
    "nesterov": (
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        [0.905, -2.19],
        [1.0545, -2.651],
    ),
    # lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8.
    # step 1: m = 0.1 g1, v = 0.001 g1^2, mhat = g1, vhat = g1^2, so p -= 0.1 g1 / (|g1| + eps):
    #         p1 = [1 - 0.1 / (1 + 2e-8), -2 - 0.1 / (1 + 1e-8)] = [0.900000002, -2.099999999]
    # step 2: m = 0.09 g1 + 0.1 g2 = [-0.055, 0.29]; v = 0.000999 g1^2 + 0.001 g2^2
    #         = [0.00124975, 0.004999]; bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999;
    #         mhat = [-0.28947368, 1.52631579], sqrt(vhat) = [0.79068805, 1.58137610];
    #         p2 = p1 - 0.1 mhat / (sqrt(vhat) + eps) = [0.93661035424, -2.19651820097]
    "adam": (
        lambda ps: Adam(ps, lr=0.1),
        [0.900000002, -2.099999999],
        [0.9366103542405654, -2.1965182009718336],
    ),
    # Step 1 of Adam is p -= lr g / (|g| + eps) ~ lr sign(g) for whatever gradient g it sees.
    # Adam, wd = 0.5: g = g1 + 0.5 p0 = [1, 0] (0 / (0 + eps) = 0 leaves the second entry):
    # p1 = [1 - 0.1 / (1 + 1e-8), -2 - 0] = [0.900000001, -2]
    "adam-l2": (lambda ps: Adam(ps, lr=0.1, weight_decay=0.5), [0.900000001, -2.0], None),
    # AdamW, wd = 0.5: p *= 1 - 0.1 * 0.5 = 0.95 -> [0.95, -1.9]; then the plain Adam step on g1:
    # p1 = [0.95 - 0.1 / (1 + 2e-8), -1.9 - 0.1 / (1 + 1e-8)] = [0.850000002, -1.999999999]
    "adamw": (lambda ps: AdamW(ps, lr=0.1, weight_decay=0.5), [0.850000002, -1.999999999], None),
}


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_update_by_hand(name: str) -> None:
    make, p1_expected, p2_expected = HAND_CASES[name]
    p1, p2 = run_two_steps(make)
    np.testing.assert_allclose(p1, p1_expected, rtol=1e-12)
    if p2_expected is not None:
        np.testing.assert_allclose(p2, p2_expected, rtol=1e-12)


def test_schedules_by_hand() -> None:
    assert [Constant(0.3)(t) for t in (0, 1, 1000)] == [0.3, 0.3, 0.3]
    # lr * gamma ** (t // step_size)
    assert [StepDecay(1.0, 3, 0.5)(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    # Cosine from 1 to 0.2 over 4 steps: 0.2 + 0.8 (1 + cos(pi t / 4)) / 2; cos(pi/4) = 0.7071...
    cos = Cosine(1.0, 4, min_lr=0.2)
    expected = [1.0, 0.2 + 0.4 * 1.7071067811865476, 0.6, 0.2 + 0.4 * 0.2928932188134524, 0.2]
    np.testing.assert_allclose([cos(t) for t in range(5)], expected, rtol=1e-14)
    assert cos(5) == cos(100) == 0.2  # stays at min_lr after total_steps
    # One cycle, max 1, 11 steps, 30% warm-up -> w = round(3.3) = 3 warm-up steps, from
    # 1 / 10 = 0.1 linearly (step 0.3), then cosine over 8 steps down to 0.1 / 100 = 0.001.
    oc = OneCycle(1.0, 11, warmup_fraction=0.3, div_factor=10.0, final_div_factor=100.0)
    assert oc.warmup_steps == 3
    got = [oc(t) for t in (0, 1, 2, 3, 5, 7, 11, 50)]
    # t = 5: s = 2/8, cos(pi/4); t = 7: s = 1/2, halfway: 0.001 + 0.999 / 2 = 0.5005
    half = 0.001 + 0.999 * 1.7071067811865476 / 2
    np.testing.assert_allclose(got, [0.1, 0.4, 0.7, 1.0, half, 0.5005, 0.001, 0.001], rtol=1e-14)
    # No warm-up: starts at the peak.
    assert OneCycle(2.0, 10, warmup_fraction=0.0)(0) == 2.0


def test_optimizer_follows_schedule() -> None:
    # SGD with lr 1, 1, 0.5 (StepDecay(1, 2, 0.5)) on gradient 1: p = 0 - 1 - 1 - 0.5 = -2.5
    p = np.zeros(1)
    opt = SGD({"w": p}, lr=StepDecay(1.0, 2, 0.5))
    lrs = []
    for _ in range(3):
        lrs.append(opt.lr)
        opt.step({"w": np.ones(1)})
    assert lrs == [1.0, 1.0, 0.5]
    assert p[0] == -2.5


# ----------------------------------------------------------------------------------------
# PyTorch equality

SHAPES = {"W1": (7, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)}


def random_params(dtype: type, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def random_grads(rng: np.random.Generator, dtype: type) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


# (our factory, torch factory) with the same hyper-parameters, including weight decay.
CASES: dict[str, tuple[Callable, Callable]] = {
    "sgd": (
        lambda ps: SGD(ps, lr=0.05, weight_decay=0.01),
        lambda torch, ts: torch.optim.SGD(ts, lr=0.05, weight_decay=0.01),
    ),
    "momentum": (
        lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
        lambda torch, ts: torch.optim.SGD(ts, lr=0.05, momentum=0.9, weight_decay=0.01),
    ),
    "nesterov": (
        lambda ps: SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
        lambda torch, ts: torch.optim.SGD(
            ts, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01
        ),
    ),
    "adam": (
        lambda ps: Adam(ps, lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05),
        lambda torch, ts: torch.optim.Adam(
            ts, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05
        ),
    ),
    "adam-default": (
        lambda ps: Adam(ps),
        lambda torch, ts: torch.optim.Adam(ts),
    ),
    "adamw": (
        lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1),
        lambda torch, ts: torch.optim.AdamW(ts, lr=0.01, weight_decay=0.1),
    ),
}


def compare_with_torch(
    ours: Callable, theirs: Callable, dtype: type, steps: int, rtol: float, atol: float
) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for optimizers")
    params = random_params(dtype)
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params.values()]
    arrays = dict(params)  # the objects a model would hold
    opt, topt = ours(params), theirs(torch, tparams)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        grads = random_grads(rng, dtype)
        for tp, g in zip(tparams, grads.values(), strict=True):
            tp.grad = torch.from_numpy(g.copy())
        opt.step(grads)
        topt.step()
        for (key, p), tp in zip(params.items(), tparams, strict=True):
            assert p is arrays[key] and p.dtype == dtype
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=rtol, atol=atol, err_msg=key)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_float64(name: str) -> None:
    compare_with_torch(*CASES[name], np.float64, steps=20, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_float32(name: str) -> None:
    compare_with_torch(*CASES[name], np.float32, steps=20, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: StepDecay(0.5, 4, 0.3),
            lambda torch, opt: torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.3),
        ),
        (
            lambda: Cosine(0.5, 17, min_lr=0.01),
            lambda torch, opt: torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=17, eta_min=0.01
            ),
        ),
        (
            lambda: Constant(0.5),
            lambda torch, opt: torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0),
        ),
    ],
)
def test_schedules_match_torch(ours: Callable, theirs: Callable) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for schedules")
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    tsched = theirs(torch, topt)
    sched = ours()
    for t in range(18):  # up to T_max: past it PyTorch's cosine rises again, ours stays
        assert sched(t) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        topt.step()
        tsched.step()


def test_adam_with_schedule_matches_torch() -> None:
    compare_with_torch(
        lambda ps: Adam(ps, lr=Cosine(0.01, 20)),
        lambda torch, ts: _ScheduledTorch(torch, torch.optim.Adam(ts, lr=0.01), 20),
        np.float64,
        steps=20,
        rtol=1e-12,
        atol=1e-13,
    )


class _ScheduledTorch:
    """A torch optimizer whose step also advances a CosineAnnealingLR."""

    def __init__(self, torch: Any, opt: Any, t_max: int) -> None:
        self.opt = opt
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max)

    def step(self) -> None:
        self.opt.step()
        self.sched.step()


# ----------------------------------------------------------------------------------------
# In place, dtype, no allocation


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_step_allocates_nothing_of_parameter_size(name: str) -> None:
    params = {"W": np.ones((300, 200), np.float32), "b": np.ones(200, np.float32)}
    grads = {k: np.full_like(p, 0.5) for k, p in params.items()}
    opt = make_optimizer(name, params, lr=0.01, weight_decay=0.1)
    opt.step(grads)  # warm-up: anything lazily created happens here
    tracemalloc.start()
    try:
        opt.step(grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < params["W"].nbytes // 10, f"{name} step allocated {peak} bytes"
    assert all(p.dtype == np.float32 for p in params.values())
    assert opt.t == 2


def test_grads_are_not_modified() -> None:
    params = random_params(np.float64)
    grads = random_grads(np.random.default_rng(3), np.float64)
    before = {k: g.copy() for k, g in grads.items()}
    for name in ("sgd", "momentum", "nesterov", "adam", "adamw"):
        make_optimizer(name, params, lr=0.1, weight_decay=0.1).step(grads)
    for k, g in grads.items():
        np.testing.assert_array_equal(g, before[k])


# ----------------------------------------------------------------------------------------
# state_dict


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_state_dict_round_trip_continues_bit_identically(name: str) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(5)
    grads = [random_grads(rng, np.float32) for _ in range(8)]
    sched = OneCycle(0.05, 8)
    params = random_params(np.float32)
    opt = make_optimizer(name, params, lr=sched, weight_decay=0.01)
    for g in grads[:4]:
        opt.step(g)
    # Through safetensors bytes, as a training checkpoint would store it.
    saved = safetensors_numpy.load(safetensors_numpy.save(opt.state_dict()))
    resumed_params = {k: p.copy() for k, p in params.items()}
    for g in grads[4:]:
        opt.step(g)
    resumed = make_optimizer(name, resumed_params, lr=sched, weight_decay=0.01)
    resumed.load_state_dict(saved)
    assert resumed.t == 4
    for g in grads[4:]:
        resumed.step(g)
    for k in params:
        np.testing.assert_array_equal(resumed_params[k], params[k])
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("fused", [False, True])
def test_rebind_continues_on_new_arrays_bit_identically(name: str, fused: bool) -> None:
    import pickle

    rng = np.random.default_rng(6)
    grads = [random_grads(rng, np.float64) for _ in range(6)]
    params = random_params(np.float64)
    opt = make_optimizer(name, params, lr=0.05)
    opt.fused = fused
    for g in grads[:3]:
        opt.step(g)
    # A pickle round trip cuts the optimiser's params off from the caller's copies.
    again = pickle.loads(pickle.dumps(opt))
    moved = {k: p.copy() for k, p in params.items()}
    again.rebind(moved)
    assert again.params["W1"] is moved["W1"] and again.t == 3
    for g in grads[3:]:
        opt.step(g)
        again.step(g)
    for k in params:
        np.testing.assert_array_equal(moved[k], params[k])


def test_rebind_validates_and_copies_read_only_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    joblib = pytest.importorskip("joblib")
    rng = np.random.default_rng(0)
    params = random_params(np.float64)
    adam = Adam(params)
    adam.step(random_grads(rng, np.float64))
    bad = {k: p.copy() for k, p in params.items() if k != "W1"}
    with pytest.raises(ValueError, match=r"missing \['W1'\]"):
        adam.rebind(bad)
    with pytest.raises(ValueError, match="dtype float64"):
        adam.rebind({k: p.astype(np.float32) for k, p in params.items()})
    frozen = {k: p.copy() for k, p in params.items()}
    frozen["b1"].setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        adam.rebind(frozen)
    assert adam.params["W1"] is params["W1"]  # the refusals changed nothing
    # A memory-mapped reload gives read-only state buffers: rebind copies them.
    joblib.dump(adam, tmp_path / "adam.joblib")
    loaded = joblib.load(tmp_path / "adam.joblib", mmap_mode="r")
    fresh = {k: p.copy() for k, p in params.items()}
    loaded.rebind(fresh)
    g = random_grads(rng, np.float64)
    loaded.step(g)
    adam.step(g)
    for k in params:
        np.testing.assert_array_equal(fresh[k], params[k])


def test_state_dict_keys() -> None:
    params = random_params(np.float64)
    assert set(SGD(params).state_dict()) == {"t"}
    assert set(SGD(params, momentum=0.9).state_dict()) == {"t"} | {f"v.{k}" for k in SHAPES}
    keys = {"t"} | {f"{b}.{k}" for b in "mv" for k in SHAPES}
    assert set(Adam(params).state_dict()) == keys
    state = Adam(params).state_dict()
    assert state["t"].shape == () and state["m.W1"].shape == SHAPES["W1"]


def test_load_state_dict_validates() -> None:
    params = random_params(np.float64)
    adam = Adam(params)
    good = adam.state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['m.W1'\]"):
        adam.load_state_dict({k: v for k, v in good.items() if k != "m.W1"})
    with pytest.raises(ValueError, match="unexpected keys"):
        SGD(params, momentum=0.9).load_state_dict(good)
    with pytest.raises(ValueError, match=r"v.b1 has shape \(4,\), expected \(5,\)"):
        adam.load_state_dict({**good, "v.b1": np.zeros(4)})
    with pytest.raises(ValueError, match="'t'"):
        adam.load_state_dict({**good, "t": np.array(-1)})
    with pytest.raises(ValueError, match="'t'"):
        adam.load_state_dict({**good, "t": np.array(1.5)})
    assert adam.t == 0


# ----------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ps: SGD(ps, lr=0.0), "lr"),
        (lambda ps: SGD(ps, lr=-1.0), "lr"),
        (lambda ps: SGD(ps, lr=float("nan")), "lr"),
        (lambda ps: SGD(ps, lr=float("inf")), "lr"),
        (lambda ps: SGD(ps, momentum=1.0), "momentum"),
        (lambda ps: SGD(ps, momentum=-0.1), "momentum"),
        (lambda ps: SGD(ps, nesterov=True), "nesterov"),
        (lambda ps: SGD(ps, weight_decay=-1e-4), "weight_decay"),
        (lambda ps: Adam(ps, beta1=1.0), "beta1"),
        (lambda ps: Adam(ps, beta2=-0.5), "beta2"),
        (lambda ps: Adam(ps, eps=0.0), "eps"),
        (lambda ps: AdamW(ps, weight_decay=float("nan")), "weight_decay"),
        (lambda ps: SGD({}), "params"),
        (lambda ps: SGD({"w": np.arange(3)}), "floating-point"),
        (lambda ps: make_optimizer("rmsprop", ps, lr=0.1), "sgd, momentum, nesterov, adam"),
        (lambda ps: make_optimizer("sgd", ps, lr=0.1, beta1=0.9), "beta1"),
    ],
)
def test_bad_hyper_parameters_raise(make: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(random_params(np.float64))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Constant(0), "lr"),
        (lambda: StepDecay(0.1, 0), "step_size"),
        (lambda: StepDecay(0.1, 2, gamma=1.5), "gamma"),
        (lambda: Cosine(0.1, 0), "total_steps"),
        (lambda: Cosine(0.1, 10, min_lr=0.2), "min_lr"),
        (lambda: OneCycle(0.1, 10, warmup_fraction=1.0), "warmup_fraction"),
        (lambda: OneCycle(0.1, 10, div_factor=0.5), "div_factor"),
        (lambda: make_schedule("linear", 0.1, 10), "constant, step, cosine, onecycle"),
    ],
)
def test_bad_schedules_raise(make: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_grads_raise() -> None:
    params = random_params(np.float64)
    opt = Adam(params)
    grads = random_grads(np.random.default_rng(0), np.float64)
    with pytest.raises(ValueError, match=r"missing \['b2'\]"):
        opt.step({k: g for k, g in grads.items() if k != "b2"})
    with pytest.raises(ValueError, match="shape"):
        opt.step({**grads, "W1": grads["W1"].T})
    with pytest.raises(ValueError, match="float32"):
        opt.step({**grads, "b1": grads["b1"].astype(np.float32)})
    assert opt.t == 0


# ----------------------------------------------------------------------------------------
# Factories


def test_make_optimizer_names() -> None:
    params = random_params(np.float64)
    sgd = make_optimizer("sgd", params, lr=0.1)
    assert type(sgd) is SGD and sgd.momentum == 0.0
    mom = make_optimizer("momentum", params, lr=0.1)
    assert type(mom) is SGD and mom.momentum == 0.9 and not mom.nesterov
    nes = make_optimizer("nesterov", params, lr=0.1, momentum=0.5)
    assert type(nes) is SGD and nes.momentum == 0.5 and nes.nesterov
    adam = make_optimizer("adam", params, lr=0.1, beta2=0.9)
    assert type(adam) is Adam and adam.beta2 == 0.9
    adamw = make_optimizer("adamw", params, lr=0.1, weight_decay=0.2)
    assert type(adamw) is AdamW and adamw.weight_decay == 0.2


def test_make_schedule_names() -> None:
    sched: Schedule = make_schedule("constant", 0.1, 100)
    assert isinstance(sched, Constant) and sched(99) == 0.1
    sched = make_schedule("step", 0.1, 90)  # default step_size 90 // 3 = 30
    assert sched == StepDecay(0.1, 30, 0.1)
    assert make_schedule("step", 0.1, 90, step_size=7, gamma=0.5) == StepDecay(0.1, 7, 0.5)
    assert make_schedule("cosine", 0.1, 50) == Cosine(0.1, 50)
    sched = make_schedule("onecycle", 0.1, 50, warmup_fraction=0.2)
    assert sched == OneCycle(0.1, 50, warmup_fraction=0.2)
    assert math.isclose(sched(10), 0.1)  # peak at w = 0.2 * 50 = 10


# ----------------------------------------------------------------------------------------
# Registries: a new optimiser or schedule is one entry


class _SignSGD(Optimizer):
    """p -= lr * sign(grad): an optimiser that exists only in this test."""

    def _update(self, grads: Any, lr: float) -> None:
        for key, p in self.params.items():
            np.sign(grads[key], out=self._scratch[key])
            self._scratch[key] *= lr
            p -= self._scratch[key]


@dataclass(frozen=True)
class _Linear(Schedule):
    """lr(t) = lr * (1 - t / total_steps): a schedule that exists only in this test."""

    lr: float
    total_steps: int

    def __call__(self, t: int) -> float:
        return self.lr * max(0.0, 1.0 - t / self.total_steps)


def test_a_new_optimizer_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from backprop.cli import build_parser
    from backprop.config import TrainConfig

    monkeypatch.setitem(
        OPTIMIZERS,
        "signsgd",
        lambda params, lr, *, momentum, weight_decay, **options: _SignSGD(params, lr, weight_decay),
    )
    # p0 = [1, -2], g1 = [0.5, 1], g2 = [-1, 2], lr = 0.1: p1 = [0.9, -2.1], p2 = [1.0, -2.2]
    p1, p2 = run_two_steps(lambda ps: make_optimizer("signsgd", ps, lr=0.1))
    np.testing.assert_allclose(p1, [0.9, -2.1])
    np.testing.assert_allclose(p2, [1.0, -2.2])
    TrainConfig(optimizer="signsgd").validate()
    assert build_parser().parse_args(["train", "--optimizer", "signsgd"]).optimizer == "signsgd"


def test_invscaling_by_hand_and_by_name() -> None:
    # lr / (t + 1) ** power_t: 0.8 / 4 ** 0.5 = 0.4 at t = 3; power_t = 0 is constant.
    assert InvScaling(0.8)(3) == pytest.approx(0.4)
    assert InvScaling(0.8, power_t=1.0)(3) == pytest.approx(0.2)
    assert InvScaling(0.8, power_t=0.0)(1000) == 0.8
    assert make_schedule("invscaling", 0.8, 10) == InvScaling(0.8)
    with pytest.raises(ValueError, match="power_t"):
        InvScaling(0.1, power_t=-1.0)


def test_a_new_schedule_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from backprop.config import TrainConfig

    monkeypatch.setitem(SCHEDULES, "linear", lambda lr, total_steps, **_: _Linear(lr, total_steps))
    sched = make_schedule("linear", 0.1, 10)
    assert [sched(t) for t in (0, 5, 10)] == pytest.approx([0.1, 0.05, 0.0])
    TrainConfig(schedule="linear").validate()


def test_registries_hold_the_documented_names() -> None:
    assert list(OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adam", "adamw"]
    assert list(SCHEDULES) == ["constant", "step", "cosine", "onecycle", "invscaling"]
    for name in ("signsgd", "linear"):  # the test entries above are gone again
        assert name not in OPTIMIZERS and name not in SCHEDULES


def test_make_optimizer_passes_momentum_only_where_it_means_something() -> None:
    params = random_params(np.float64)
    assert make_optimizer("sgd", params, lr=0.1, momentum=0.5).momentum == 0.0
    assert make_optimizer("momentum", params, lr=0.1, momentum=0.5).momentum == 0.5
    nesterov = make_optimizer("nesterov", params, lr=0.1, momentum=0.5)
    assert isinstance(nesterov, SGD) and nesterov.nesterov and nesterov.momentum == 0.5
    adam = make_optimizer("adam", params, lr=0.1, momentum=0.5, beta1=0.8)
    assert type(adam) is Adam and adam.beta1 == 0.8
    with pytest.raises(ValueError, match=r"SGD takes no option\(s\) \['eps'\]"):
        make_optimizer("momentum", params, lr=0.1, eps=1e-6)
