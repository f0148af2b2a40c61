"""Data-parallel training over MPI (`backprop.distributed`), checked through real ``mpiexec``.

The MPI tests start ``mpiexec -n 2`` in a subprocess (tests/mpi_worker.py) and compare
with the same run in one process: the same weights after two epochs (only the order of
the sums differs), a resumed run equal to an uninterrupted one, and a dead or hung rank
ending the job with a message in bounded time. Without mpi4py and an ``mpiexec`` they skip
with the reason, except under ``BACKPROP_REQUIRE_MPI=1`` (set by ``.ci/run``), where that
is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backprop import distributed
from backprop.distributed import LOCAL, MPIUnavailableError, launched_size, shard
from backprop.network import MLP
from backprop.optim import make_optimizer
from backprop.trainer import Trainer

WORKER = Path(__file__).with_name("mpi_worker.py")


def _mpiexec() -> str:
    """The ``mpiexec`` next to this Python (the `mpich` wheel's), or on PATH; else skip."""
    reason = ""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        reason = "mpi4py is not installed: pip install -e '.[mpi]'"
    exe = shutil.which(
        "mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if not reason and exe is None:
        reason = "no mpiexec found (pip install -e '.[mpi]' brings MPICH's)"
    if reason:
        if os.environ.get("BACKPROP_REQUIRE_MPI") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    assert exe is not None
    return exe


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without this process's own MPI variables (pytest under mpiexec)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OPENBLAS_NUM_THREADS="1", **extra)
    return env


def _run(ranks: int, scenario: str, dtype: str, out: Path, timeout: float = 120, **env: str):
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(WORKER), scenario, dtype, str(out)]
    if ranks > 1:
        cmd = [_mpiexec(), "-n", str(ranks), *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=_clean_env(**env)
    )


def _weights(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "weights.npz") as f:
        return {k: f[k] for k in f.files}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- no MPI


def test_shard_covers_every_row_once() -> None:
    for n in (0, 1, 5, 9, 100, 101):
        for size in (1, 2, 3, 7):
            parts = [shard(n, r, size) for r in range(size)]
            rows = [i for lo, hi in parts for i in range(lo, hi)]
            assert rows == list(range(n))
            sizes = [hi - lo for lo, hi in parts]
            assert max(sizes) - min(sizes) <= 1


def test_launched_size_reads_the_launchers_variables() -> None:
    assert launched_size({}) == 1
    assert launched_size({"PMI_SIZE": "4"}) == 4
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3


def test_without_mpi4py_a_multi_rank_launch_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if not installed
    distributed.world.cache_clear()
    try:
        with pytest.raises(MPIUnavailableError, match=r"one of 2 ranks.*backprop-mlp\[mpi\]"):
            distributed.world()
    finally:
        distributed.world.cache_clear()


def test_cli_under_mpiexec_without_mpi4py_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from backprop import cli

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    distributed.world.cache_clear()
    try:
        code = cli.main(["train", "--data", "digits", "--out", str(tmp_path / "r")])
    finally:
        distributed.world.cache_clear()
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "backprop train: error: launched by mpiexec as one of 2 ranks, but mpi4py cannot be "
        "imported (import of mpi4py halted; None in sys.modules); install it with: "
        "pip install 'backprop-mlp[mpi]'"
    ]
    assert not (tmp_path / "r").exists()


def test_one_rank_needs_no_mpi(monkeypatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "1")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    distributed.world.cache_clear()
    try:
        assert distributed.world() is LOCAL
    finally:
        distributed.world.cache_clear()


def test_bad_timeout_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("BACKPROP_MPI_TIMEOUT", "soon")
    distributed.world.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"BACKPROP_MPI_TIMEOUT.*'soon'"):
            distributed.world()
    finally:
        distributed.world.cache_clear()


def test_gradients_live_in_one_flat_buffer() -> None:
    """One Allreduce covers every layer: each gradient is a view of the trainer's buffer."""
    net = MLP([5, 4, 3, 2], seed=0)
    trainer = Trainer(net, make_optimizer("sgd", net.params, lr=0.1), batch_size=4)
    flat = trainer._flat
    assert flat.size == net.n_params + 2  # plus the loss and weight sums
    for k, g in trainer.grads.items():
        assert g.shape == net.params[k].shape
        assert np.shares_memory(g, flat)
    X = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    y = np.array([0, 1, 1, 0])
    _, fresh = net.loss_and_grads(X, y)  # before the step changes the weights
    trainer.step(X, y)
    assert fresh.keys() == trainer.grads.keys()
    for k, g in fresh.items():  # the views hold the step's gradient, bit for bit
        np.testing.assert_array_equal(trainer.grads[k], g)


# ----------------------------------------------------------------------------- MPI


@pytest.mark.parametrize(("dtype", "tol"), [("float64", 1e-12), ("float32", 1e-5)])
def test_two_ranks_train_the_same_weights_as_one(tmp_path: Path, dtype: str, tol: float) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _run(1, "plain", dtype, one)
    assert r1.returncode == 0, r1.stderr
    r2 = _run(2, "plain", dtype, two)
    assert r2.returncode == 0, r2.stderr
    a, b = _weights(one), _weights(two)
    for k in ("W1", "b1", "W2", "b2"):
        assert a[k].dtype == np.dtype(dtype)
        assert _rel(b[k], a[k]) < tol, k
    # The sharded validation agrees too (loss to rounding, accuracy exactly).
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=tol * 10)
    np.testing.assert_array_equal(b["val_metric"], a["val_metric"])
    # Two epochs really moved the weights (a no-op run would also be "equal").
    start = MLP([20, 32, 3], dtype=dtype, seed=0).params
    assert _rel(a["W1"], start["W1"]) > 1e-2


def test_two_ranks_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert _run(1, "plain", "float64", ref).returncode == 0
    crashed = _run(2, "crash", "float64", run)
    assert crashed.returncode != 0
    assert "crash after epoch 1" in crashed.stderr
    assert (run / "checkpoint.safetensors").is_file()
    assert not (run / "weights.npz").exists()
    resumed = _run(2, "resume", "float64", run)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _weights(ref), _weights(run)
    for k in ("W1", "b1", "W2", "b2"):
        assert _rel(b[k], a[k]) < 1e-12, k
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=1e-10)


def test_a_killed_rank_ends_the_job(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = _run(2, "kill", "float64", tmp_path, timeout=60, BACKPROP_MPI_TIMEOUT="20")
    assert r.returncode != 0
    assert time.monotonic() - t0 < 30
    assert "Killed" in r.stdout + r.stderr  # mpiexec names the signal that ended the rank
    assert not (tmp_path / "weights.npz").exists()


def test_a_hung_rank_ends_the_job_after_the_timeout(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = _run(2, "hang", "float64", tmp_path, timeout=60, BACKPROP_MPI_TIMEOUT="3")
    took = time.monotonic() - t0
    assert r.returncode != 0
    assert 3 <= took < 30
    assert "rank 0 of 2: waited more than 3 s for the other ranks in the gradient" in r.stderr
    assert not (tmp_path / "weights.npz").exists()


# ----------------------------------------------------------------------------- CLI


def _backprop(ranks: int, cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    script = str(Path(sys.executable).with_name("backprop"))
    cmd = [_mpiexec(), "-n", str(ranks), script] if ranks > 1 else [script]
    return subprocess.run(
        [*cmd, "train", *flags],
        capture_output=True,
        text=True,
        timeout=180,
        env=_clean_env(),
        cwd=cwd,
    )


def test_mpiexec_backprop_train_prints_and_writes_once(tmp_path: Path) -> None:
    flags = ("--data", "digits", "--epochs", "3", "--hidden", "32", "--dtype", "float64")
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    r2 = _backprop(2, tmp_path / "two", *flags, "--out", "run")
    assert r2.returncode == 0, r2.stderr
    r1 = _backprop(1, tmp_path / "one", *flags, "--out", "run")
    assert r1.returncode == 0, r1.stderr
    # Rank 0 alone prints (each line once) and writes; rank 1 leaves nothing behind.
    assert r2.stdout.count("results in run/") == 1
    assert r2.stdout.count("test accuracy") == 1
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["run"]
    assert not (tmp_path / "two" / "run" / "checkpoint.safetensors").exists()
    m2 = json.loads((tmp_path / "two" / "run" / "metrics.json").read_text())
    m1 = json.loads((tmp_path / "one" / "run" / "metrics.json").read_text())
    assert m2["test_accuracy"] == m1["test_accuracy"]
    assert m2["test_loss"] == pytest.approx(m1["test_loss"], rel=1e-10)


def test_mpiexec_a_refused_out_dir_ends_every_rank(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("not a run")
    t0 = time.monotonic()
    r = _backprop(2, tmp_path, "--data", "digits", "--epochs", "2", "--out", "run")
    assert r.returncode != 0
    assert time.monotonic() - t0 < 60  # rank 1 does not wait for the timeout (300 s)
    assert r.stderr.count("backprop train: error:") == 1, r.stderr
    assert (tmp_path / "run" / "mine.txt").read_text() == "not a run"


def test_mpiexec_resumes_a_run_interrupted_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mpiexec -n 2 backprop train --resume DIR``: rank 0 holds the lock, all ranks read."""
    from backprop import cli
    from backprop import run as runs
    from backprop.callbacks import Callback

    class Interrupt(Callback):
        def on_epoch_end(self, epoch: int, log: object, trainer: object) -> None:
            if epoch == 1:  # after the checkpoint of epoch 1 (Checkpoint comes first)
                raise KeyboardInterrupt

    real = runs.train
    monkeypatch.setattr(
        runs, "train", lambda *a, **kw: real(*a, **{**kw, "callbacks": [Interrupt()]})
    )
    flags = ("--data", "digits", "--epochs", "3", "--hidden", "32", "--dtype", "float64")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", *flags, "--out", "run", "--quiet"]) == 130
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    monkeypatch.undo()
    resumed = _backprop(2, tmp_path, "--resume", "run")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("results in run/") == 1
    (tmp_path / "ref").mkdir()
    ref = _backprop(1, tmp_path / "ref", *flags, "--out", "run")
    assert ref.returncode == 0, ref.stderr
    m2 = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m1 = json.loads((tmp_path / "ref" / "run" / "metrics.json").read_text())
    assert m2["epochs_run"] == 3
    assert m2["test_accuracy"] == m1["test_accuracy"]
    assert m2["test_loss"] == pytest.approx(m1["test_loss"], rel=1e-10)


# ----------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def dask_client():
    """A client of a 2-worker `distributed.LocalCluster` of real processes, or skip."""
    reason = "dask[distributed] is not installed: pip install -e '.[test]'"
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        if os.environ.get("BACKPROP_REQUIRE_MPI") == "1":  # CI installs the test extra
            pytest.fail(reason)
        pytest.skip(reason)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("search", ["grid", "random"])
def test_search_on_a_dask_cluster_equals_one_process(dask_client, search: str) -> None:
    import joblib
    from distributed import get_task_stream
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    from backprop.estimators import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16.0, y[:400]
    grid = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-1]}
    est = MLPClassifier(max_iter=15, random_state=0)

    def make(n_jobs: int) -> GridSearchCV | RandomizedSearchCV:
        if search == "grid":
            return GridSearchCV(est, grid, cv=3, n_jobs=n_jobs)
        return RandomizedSearchCV(est, grid, n_iter=3, cv=3, n_jobs=n_jobs, random_state=0)

    alone = make(1).fit(X, y)
    # BLAS threads per worker are bounded (Dask's nanny sets OPENBLAS_NUM_THREADS and
    # friends to the worker's thread count): two workers do not oversubscribe two cores.
    assert list(dask_client.run(_blas_threads).values()) == [1, 1]
    with get_task_stream(dask_client) as tasks, joblib.parallel_backend("dask"):
        clustered = make(-1).fit(X, y)
    # The fits really ran in the cluster's worker processes.
    assert {t["worker"] for t in tasks.data} == set(dask_client.scheduler_info()["workers"])
    assert clustered.best_params_ == alone.best_params_
    np.testing.assert_array_equal(
        clustered.cv_results_["mean_test_score"], alone.cv_results_["mean_test_score"]
    )
    assert clustered.best_score_ == alone.best_score_
