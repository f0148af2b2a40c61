"""Tests for backprop.threads: the thread-count rule, who wins, and that runs obey it.

The rule's numbers are worked by hand here (2 * batch * d_in * d_out of the widest layer,
divided by WORK_PER_THREAD = 50e6); no test times anything.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

from backprop import MLP
from backprop.callbacks import Callback
from backprop.estimators import MLPClassifier
from backprop.optim import make_optimizer
from backprop.threads import (
    THREAD_ENV,
    WORK_PER_THREAD,
    ThreadsError,
    choose_threads,
    largest_product_flops,
    limit,
    training_threads,
)
from backprop.trainer import Trainer


def blas_threads() -> int:
    return min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def two_threads() -> int:
    """BLAS with at least 2 threads, so that limiting to 1 is visible."""
    if blas_threads() < 2:
        pytest.skip("BLAS runs one thread here; a limit to 1 cannot be told apart")
    return blas_threads()


def test_rule_constant_is_documented_value() -> None:
    assert WORK_PER_THREAD == 50e6


@pytest.mark.parametrize(
    ("sizes", "batch", "flops"),
    [
        ([64, 1024, 10], 128, 2 * 128 * 64 * 1024),  # digits default: 16.8 MFLOP
        ([784, 512, 10], 128, 2 * 128 * 784 * 512),  # the benchmark's headline: 102.8
        ([10, 3, 500], 7, 2 * 7 * 3 * 500),  # widest product at the output layer
        ([5, 20, 30, 2], 4, 2 * 4 * 20 * 30),  # a middle layer
    ],
)
def test_largest_product_by_hand(sizes: list[int], batch: int, flops: int) -> None:
    assert largest_product_flops(sizes, batch) == flops


@pytest.mark.parametrize(
    ("sizes", "batch", "available", "expected"),
    [
        ([64, 1024, 10], 128, 2, 1),  # 16.8 MFLOP: small, one thread
        ([64, 1024, 10], 128, 16, 1),
        ([784, 512, 10], 128, 2, 2),  # 102.8 MFLOP: two shares of 50
        ([784, 512, 10], 128, 16, 2),
        ([784, 2048, 10], 128, 16, 8),  # 411 MFLOP: eight shares
        ([784, 2048, 10], 128, 2, 2),  # never more than BLAS has
        ([1000, 500, 1], 100, 16, 2),  # exactly 100e6: two shares
        ([1000, 500, 1], 99, 16, 1),  # 99e6: one
        ([1000, 500, 1], 100, 1, 1),
    ],
)
def test_rule(sizes: list[int], batch: int, available: int, expected: int) -> None:
    assert choose_threads(sizes, batch, env={}, available=available) == expected


@pytest.mark.parametrize("name", THREAD_ENV)
def test_user_environment_wins_over_rule(name: str) -> None:
    assert choose_threads([784, 2048, 10], 128, env={name: "2"}, available=16) is None
    assert choose_threads([64, 10], 1, env={name: "4"}, available=16) is None


def test_empty_environment_variable_is_not_a_choice() -> None:
    assert choose_threads([784, 2048, 10], 128, env={"OMP_NUM_THREADS": " "}, available=16) == 8


def test_explicit_threads_win_over_environment_and_rule() -> None:
    env = {"OPENBLAS_NUM_THREADS": "1"}
    assert choose_threads([64, 10], 1, threads=3, env=env, available=2) == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_threads(bad: object) -> None:
    with pytest.raises(ThreadsError, match="threads must be a positive integer"):
        choose_threads([4, 2], 1, threads=bad, env={}, available=2)  # type: ignore[arg-type]


def test_limit_sets_and_restores(no_env: None, two_threads: int) -> None:
    with limit([64, 1024, 10], 128) as n:
        assert n == 1
        assert blas_threads() == 1
    assert blas_threads() == two_threads
    with limit([784, 512, 10], 128) as n:  # large enough for 2
        assert n == 2
        assert blas_threads() == 2
    assert blas_threads() == two_threads


def test_training_threads_is_what_limit_holds(
    monkeypatch: pytest.MonkeyPatch, no_env: None, two_threads: int
) -> None:
    # What `limit` would set, so that a run can tell whether it leaves a core free.
    for sizes, batch in (([64, 1024, 10], 128), ([784, 512, 10], 128)):
        with limit(sizes, batch) as n:
            assert training_threads(sizes, batch) == n
    assert training_threads([64, 1024, 10], 128, threads=2) == 2
    # The environment fixed BLAS's count (after it loaded): the count BLAS has is used.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert training_threads([64, 1024, 10], 128) == two_threads


def test_limit_keeps_an_outer_limit(no_env: None, two_threads: int) -> None:
    with threadpool_limits(1, user_api="blas"), limit([784, 2048, 10], 512) as n:
        assert n == 1
        assert blas_threads() == 1
    assert blas_threads() == two_threads


def test_limit_leaves_user_environment_alone(
    monkeypatch: pytest.MonkeyPatch, two_threads: int
) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", str(two_threads))
    with limit([64, 1024, 10], 128) as n:
        assert n is None
        assert blas_threads() == two_threads


def test_overlapping_runs_in_threads_restore_once(no_env: None, two_threads: int) -> None:
    """Run A starts, B starts, A ends first, B ends: the count is limited while either
    runs and the original one comes back only when both are done."""
    a_in, b_in, a_out, b_may_leave, b_out = (threading.Event() for _ in range(5))
    seen: dict[str, int] = {}

    def run_a() -> None:
        with limit([64, 10], 8):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def run_b() -> None:
        a_in.wait(5)
        with limit([64, 10], 8):
            b_in.set()
            b_may_leave.wait(5)
        b_out.set()

    ta, tb = threading.Thread(target=run_a), threading.Thread(target=run_b)
    ta.start()
    tb.start()
    assert a_out.wait(5)
    seen["after A"] = blas_threads()
    b_may_leave.set()
    assert b_out.wait(5)
    ta.join()
    tb.join()
    seen["after both"] = blas_threads()
    assert seen == {"after A": 1, "after both": two_threads}


class _Record(Callback):
    def __init__(self) -> None:
        self.threads: list[int] = []

    def on_epoch_end(self, epoch: int, log: object, trainer: object) -> None:
        self.threads.append(blas_threads())


def _fit(sizes: list[int], threads: int | None = None) -> list[int]:
    rng = np.random.default_rng(0)
    X = rng.random((40, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], 40)
    net = MLP(sizes, seed=0)
    trainer = Trainer(net, make_optimizer("sgd", net.params, lr=0.01), batch_size=16)
    rec = _Record()
    trainer.fit(X, y, epochs=2, callbacks=[rec], threads=threads)
    return rec.threads


def test_trainer_fit_runs_under_the_rule(no_env: None, two_threads: int) -> None:
    assert _fit([8, 16, 3]) == [1, 1]
    assert blas_threads() == two_threads


def test_trainer_fit_explicit_threads(no_env: None, two_threads: int) -> None:
    with threadpool_limits(1, user_api="blas"):
        assert _fit([8, 16, 3], threads=2) == [2, 2]
        assert blas_threads() == 1


def test_trainer_fit_bad_threads() -> None:
    with pytest.raises(ThreadsError):
        _fit([8, 16, 3], threads=0)


def test_estimator_fit_runs_under_the_rule(
    no_env: None, two_threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scikit-learn estimators drive Trainer.fit, so GridSearchCV(n_jobs=2) over them
    runs one BLAS thread per small fit (and joblib's worker environment wins)."""
    seen: list[int] = []
    run_epoch = Trainer.run_epoch

    def spy(self: Trainer, *args: object, **kwargs: object) -> float:
        seen.append(blas_threads())
        return run_epoch(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "run_epoch", spy)
    X = np.random.default_rng(0).random((30, 4))
    y = np.arange(30) % 2
    with pytest.warns(ConvergenceWarning):  # 3 epochs on purpose: short
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    assert seen == [1, 1, 1]
    assert blas_threads() == two_threads


def test_cli_threads_flag_reaches_the_trainer(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import io

    from backprop import cli

    seen: list[object] = []
    real_fit = Trainer.fit

    def spy(self: Trainer, *args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("threads"))
        return real_fit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "fit", spy)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        run = ["train", "--data", "digits", "--epochs", "1", "--threads", "1", "--quiet"]
        code = cli.main([*run, "--out", f"{tmp_path}/run"])
        bad = cli.main(["train", "--threads", "0"])
    assert code == 0, err.getvalue()
    assert seen == [1]
    assert bad == 2
    assert err.getvalue().strip().splitlines()[-1] == (
        "backprop train: error: --threads: must be a whole number >= 1, got '0' "
        "(see backprop train --help)"
    )
