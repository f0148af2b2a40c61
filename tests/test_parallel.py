"""Tests for backprop._parallel: the two-thread split of large elementwise updates."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from backprop import _parallel
from backprop.optim import make_optimizer


@pytest.fixture
def restore_setting() -> Iterator[None]:
    yield
    _parallel.set_elementwise_threads(_parallel.DEFAULT_THREADS)


def _train_big(name: str, threads: int, steps: int = 3) -> dict[str, np.ndarray]:
    """A few optimiser steps on parameters large enough to be split (W) and not (b)."""
    _parallel.set_elementwise_threads(threads)
    rng = np.random.default_rng(0)
    n = _parallel.MIN_SPLIT_SIZE + 7  # odd size: the halves differ by one element
    params = {"W": rng.standard_normal((n,), np.float32).reshape(n, 1), "b": np.ones(5, np.float32)}
    opt = make_optimizer(name, params, lr=0.01, weight_decay=0.1)
    for _ in range(steps):
        grads = {k: rng.standard_normal(p.shape, np.float32) for k, p in params.items()}
        opt.step(grads)
    return {**params, **{f"state.{k}": v for k, v in opt.state_dict().items()}}


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_split_update_is_bit_identical_to_serial(name: str, restore_setting: None) -> None:
    serial = _train_big(name, threads=1)
    split = _train_big(name, threads=2)
    assert _parallel.elementwise_threads() == 2
    for k in serial:
        np.testing.assert_array_equal(split[k], serial[k], err_msg=k)


def test_split_matches_a_plain_numpy_update(restore_setting: None) -> None:
    # p -= lr * (g + wd * p), written out independently of the optimiser.
    _parallel.set_elementwise_threads(2)
    rng = np.random.default_rng(1)
    p = rng.standard_normal(2 * _parallel.MIN_SPLIT_SIZE)
    g = rng.standard_normal(p.shape)
    expected = p - 0.5 * (g + 0.1 * p)
    make_optimizer("sgd", {"p": p}, lr=0.5, weight_decay=0.1).step({"p": g})
    np.testing.assert_allclose(p, expected, rtol=1e-15, atol=1e-15)


def test_run_split_covers_every_element_once(restore_setting: None) -> None:
    _parallel.set_elementwise_threads(2)
    x = np.zeros(_parallel.MIN_SPLIT_SIZE + 1)

    def add_one(a: np.ndarray) -> None:
        a += 1

    _parallel.run_split(add_one, (x,))
    np.testing.assert_array_equal(x, 1.0)


def test_worker_exception_reaches_the_caller(restore_setting: None) -> None:
    _parallel.set_elementwise_threads(2)
    x = np.arange(2 * _parallel.MIN_SPLIT_SIZE, dtype=np.float64)

    def fail_on_second_half(a: np.ndarray) -> None:
        if a[0] >= _parallel.MIN_SPLIT_SIZE:
            raise ValueError("second half")

    with pytest.raises(ValueError, match="second half"):
        _parallel.run_split(fail_on_second_half, (x,))
    _parallel.run_split(lambda a: None, (x,))  # the worker still answers afterwards


def test_one_thread_never_starts_the_worker(
    restore_setting: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel.set_elementwise_threads(1)
    monkeypatch.setattr(_parallel, "_get_worker", lambda: pytest.fail("worker used"))
    _parallel.run_split(lambda a: None, (np.zeros(10 * _parallel.MIN_SPLIT_SIZE),))


def test_auto_follows_blas_threads(restore_setting: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _parallel.set_elementwise_threads(None)
    monkeypatch.setattr(_parallel, "_blas_threads", lambda: 1)
    assert _parallel.elementwise_threads() == 1
    _parallel.set_elementwise_threads(None)
    monkeypatch.setattr(_parallel, "_blas_threads", lambda: 4)
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 4)
    assert _parallel.elementwise_threads() == 2


def test_default_is_one_thread() -> None:
    assert _parallel.DEFAULT_THREADS == 1
    assert _parallel.elementwise_threads() == 1


@pytest.mark.parametrize("bad", [0, 3, -1, True, 1.5, "2"])
def test_bad_setting_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="elementwise threads must be 1, 2 or None"):
        _parallel.set_elementwise_threads(bad)  # type: ignore[arg-type]
