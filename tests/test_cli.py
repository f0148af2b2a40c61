"""The ``backprop`` command line end to end: train, evaluate, predict, info, and mistakes.

Every command is run in-process through ``backprop.cli.main`` (fast, and the exit status
is its return value); one test runs the installed ``backprop`` script as a subprocess to
prove the entry point works. Reported numbers are checked against independent
computations (the model loaded with ``backprop.io.load``, scikit-learn's metrics).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss

from backprop import cli
from backprop.data import load_dataset
from backprop.io import FORMAT_VERSION, load

EPOCHS = 12  # digits reaches > 0.9 test accuracy well within this
TRAIN_FLAGS = [
    "--data",
    "--data-dir",
    "--task",
    "--target",
    "--hidden",
    "--activation",
    "--epochs",
    "--batch-size",
    "--optimizer",
    "--lr",
    "--momentum",
    "--weight-decay",
    "--schedule",
    "--val-fraction",
    "--patience",
    "--seed",
    "--dtype",
    "--out",
    "--force",
    "--quiet",
    "--resume",
    "--threads",
]
HELP_FLAGS = {
    "train": TRAIN_FLAGS,
    "evaluate": ["MODEL", "--data", "--data-dir", "--task", "--target", "--seed", "--json"],
    "predict": ["MODEL", "INPUT", "--output", "--proba"],
    "info": ["MODEL", "--json"],
    "gradcheck": ["--seed", "--threshold", "--notes-only"],
}


def run(*argv: str) -> tuple[int, str, str]:
    """``backprop ARGV`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def listing(root: Path) -> set[str]:
    """Every path under root (hidden temporary files included), relative to root."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One short training run on digits shared by the tests: (results dir, stdout)."""
    out = tmp_path_factory.mktemp("digits") / "run"
    code, stdout, stderr = run(
        "train", "--data", "digits", "--epochs", EPOCHS, "--seed", 0, "--out", out
    )
    assert code == 0, stderr
    return out, stdout


@pytest.fixture(scope="module")
def digits_test() -> tuple[np.ndarray, np.ndarray]:
    """The digits test split train held out (seed 0): inputs and original labels."""
    ds = load_dataset("digits", seed=0)
    assert ds.classes is not None
    return np.asarray(ds.X_test), ds.classes[ds.y_test]


# ---------------------------------------------------------------------------- train


def test_train_writes_every_result_file(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    expected = {
        "model.safetensors",
        "metrics.json",
        "history.csv",
        "loss.png",
        "confusion.png",
        "weights.png",
        "mistakes.png",
    }
    assert {p.name for p in out.iterdir()} == expected
    for name in expected - {"metrics.json", "history.csv"}:
        assert (out / name).stat().st_size > 100
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The staging directory was renamed, not left beside the results.
    assert [p.name for p in out.parent.iterdir()] == ["run"]


def test_train_metrics_match_an_independent_evaluation(
    digits_run: tuple[Path, str], digits_test: tuple[np.ndarray, np.ndarray]
) -> None:
    out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("task", "test_accuracy", "test_loss", "train_seconds", "epochs_run"):
        assert key in metrics
    assert metrics["task"] == "classification"
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= EPOCHS
    assert 0 < metrics["train_seconds"] <= metrics["run_seconds"]
    assert metrics["config"]["epochs"] == EPOCHS and metrics["config"]["seed"] == 0
    assert metrics["dataset"]["name"] == "digits"
    assert metrics["dataset"]["n_train"] + metrics["dataset"]["n_test"] == 1797
    assert metrics["test_accuracy"] > 0.9

    X_test, labels = digits_test
    assert metrics["dataset"]["n_test"] == len(X_test)
    model = load(out / "model.safetensors")
    accuracy = float(np.mean(model.predict(X_test) == labels))
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    p = model.predict_proba(X_test).astype(np.float64)
    expected_loss = log_loss(labels, p / p.sum(axis=1, keepdims=True), labels=model.classes)
    assert metrics["test_loss"] == pytest.approx(expected_loss, rel=1e-4)


def test_train_history_has_one_row_per_epoch(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    lines = (out / "history.csv").read_text().strip().splitlines()
    assert "epoch" in lines[0]
    assert len(lines) == 1 + metrics["epochs_run"]


def test_train_prints_a_summary(digits_run: tuple[Path, str]) -> None:
    out, stdout = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in stdout
    assert f"in {metrics['train_seconds']:.2f} s of a {metrics['run_seconds']:.2f} s run" in stdout
    assert str(out) in stdout
    assert len(stdout.splitlines()) <= 5


def test_train_diabetes_reports_rmse_and_mean_baseline(tmp_path: Path) -> None:
    out = tmp_path / "diabetes"
    code, stdout, stderr = run(
        "train", "--data", "diabetes", "--epochs", 40, "--seed", 3, "--out", out
    )
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "regression"
    assert "test_accuracy" not in metrics
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors",
        "metrics.json",
        "history.csv",
        "loss.png",
    }
    ds = load_dataset("diabetes", seed=3)
    y_test = np.asarray(ds.y_test, dtype=np.float64)
    # RMSE of always predicting the mean of the *training* targets (an honest baseline)
    baseline = np.sqrt(np.mean((y_test - np.mean(ds.y_train, dtype=np.float64)) ** 2))
    assert metrics["baseline_rmse"] == pytest.approx(baseline, rel=1e-9)
    model = load(out / "model.safetensors")
    rmse = np.sqrt(np.mean((model.predict(ds.X_test).astype(np.float64) - y_test) ** 2))
    assert metrics["test_rmse"] == pytest.approx(rmse, rel=1e-4)
    assert metrics["test_rmse"] < metrics["baseline_rmse"]
    assert "RMSE" in stdout and "mean" in stdout


def test_train_force_replaces_an_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "confusion.png").write_bytes(b"stale")
    args = ("train", "--data", "diabetes", "--epochs", 2, "--out", out, "--quiet")
    code, _, err = run(*args)
    assert code == 2 and "not empty" in err and "--force" in err
    code, stdout, err = run(*args, "--force")
    assert code == 0, err
    assert stdout.splitlines() == [  # --quiet: only where the results went
        f"results in {out}/: history.csv, loss.png, metrics.json, model.safetensors"
    ]
    names = {p.name for p in out.iterdir()}
    # The user's file survives; the earlier run's plot that this run does not make is gone.
    assert names == {"notes.txt", "model.safetensors", "metrics.json", "history.csv", "loss.png"}


# ------------------------------------------------------------- evaluate, predict, info


def test_evaluate_matches_independent_accuracy_and_loss(
    digits_run: tuple[Path, str], digits_test: tuple[np.ndarray, np.ndarray]
) -> None:
    out, _ = digits_run
    code, stdout, err = run("evaluate", out / "model.safetensors", "--data", "digits", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    X_test, labels = digits_test
    model = load(out / "model.safetensors")
    assert doc["n_test"] == len(X_test)
    assert doc["accuracy"] == pytest.approx(np.mean(model.predict(X_test) == labels), abs=1e-12)
    p = model.predict_proba(X_test).astype(np.float64)
    loss = log_loss(labels, p / p.sum(axis=1, keepdims=True), labels=model.classes)
    assert doc["loss"] == pytest.approx(loss, rel=1e-4)
    code, text, _ = run("evaluate", out / "model.safetensors", "--data", "digits")
    # The same line as train's summary, from the same numbers.
    assert code == 0 and text.splitlines() == [
        f"digits: test accuracy {doc['accuracy']:.4f} on {len(X_test)} test examples, "
        f"test loss (cross-entropy) {doc['loss']:.4g}"
    ]
    assert text.splitlines()[0] == digits_run[1].splitlines()[0]


def test_predict_csv_and_npy_equal_model_predict(
    digits_run: tuple[Path, str], digits_test: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    out, _ = digits_run
    model_path = out / "model.safetensors"
    model = load(model_path)
    X = digits_test[0][:40].astype(np.float64)
    csv_in = tmp_path / "x.csv"
    np.savetxt(csv_in, X, delimiter=",")

    code, stdout, err = run("predict", model_path, csv_in)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert lines[0] == "prediction"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=np.int64), model.predict(X))

    npy_in = tmp_path / "x.npy"
    np.save(npy_in, X)
    npy_out = tmp_path / "p.npy"
    code, stdout, err = run("predict", model_path, npy_in, "--proba", "--output", npy_out)
    assert code == 0 and stdout == "", err
    np.testing.assert_array_equal(np.load(npy_out), model.predict_proba(X))

    csv_out = tmp_path / "p.csv"
    code, _, err = run("predict", model_path, npy_in, "--proba", "-o", csv_out)
    assert code == 0, err
    rows = csv_out.read_text().strip().splitlines()
    assert rows[0].split(",") == [f"p_{c}" for c in model.classes]
    got = np.array([r.split(",") for r in rows[1:]], dtype=np.float64)
    np.testing.assert_array_equal(got, model.predict_proba(X))  # floats round-trip exactly
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.npy", "x.csv", "x.npy"]


def _idx_images(images: np.ndarray) -> bytes:
    """An IDX3 file (magic 2051) of uint8 images, written by hand."""
    n, h, w = images.shape
    return struct.pack(">iiii", 2051, n, h, w) + images.astype(np.uint8).tobytes()


def test_predict_idx_images_scaled_by_the_model(
    digits_run: tuple[Path, str], digits_test: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    out, _ = digits_run
    # Raw digits pixels (0..16) in a uint8 IDX file: the model divides by 16, not the file
    # format by 255.
    images = digits_test[0][:30].astype(np.uint8).reshape(30, 8, 8)
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_images(images)))
    code, stdout, err = run(
        "predict", out / "model.safetensors", path, "--proba", "-o", tmp_path / "p.npy"
    )
    assert code == 0 and stdout == "" and err == "", err
    model = load(out / "model.safetensors")
    expected = model.predict_proba(digits_test[0][:30])
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)


def test_info_describes_the_model(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    hidden = metrics["config"]["hidden"]
    sizes = [64, *hidden, 10]
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    code, text, err = run("info", out / "model.safetensors")
    assert code == 0, err
    assert " -> ".join(map(str, sizes)) in text
    assert f"{n_params:,}" in text
    assert "relu" in text and "softmax_cross_entropy" in text
    assert f"format version:  {FORMAT_VERSION}" in text
    assert "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in text
    # What the model expects as raw input.
    assert "image shape:   8x8" in text and "raw range:     0..16" in text
    assert (
        "input scale:   divided by 16" in text
        and "standardized:  per-feature mean, global scale" in text
    )
    code, text, _ = run("info", out / "model.safetensors", "--json")
    doc = json.loads(text)
    assert doc["n_params"] == n_params and doc["layer_sizes"] == sizes
    assert doc["input"]["input_scale"] == 16.0 and doc["input"]["image_shape"] == [8, 8]
    assert doc["input"]["raw_range"] == "0..16" and doc["input"]["standardization"].endswith(
        "global scale"
    )
    assert doc["config"]["epochs"] == EPOCHS


# ------------------------------------------------------------------------ mistakes


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    """Broken inputs of every kind, in tmp_path/inputs."""
    d = tmp_path / "inputs"
    d.mkdir()
    files = {
        "text.csv": "a,b,y\n1,2,3\n4,x,5\n",
        "narrow.csv": "1,2,3\n4,5,6\n",
        "nan.npy": None,
        "html.gz": "<!DOCTYPE html><html><body>404</body></html>",
        "model.safetensors": "not a model at all",
    }
    for name, text in files.items():
        if text is not None:
            (d / name).write_text(text)
    np.save(d / "nan.npy", np.full((3, 64), np.nan))
    rng = np.random.default_rng(0)
    labelled = np.column_stack([rng.random((40, 64)), np.tile([0, 1, 42, 42], 10)])
    np.savetxt(d / "labels42.csv", labelled, delimiter=",", fmt="%g")
    (d / "empty").mkdir()
    (d / "short-idx3-ubyte").write_bytes(_idx_images(np.zeros((4, 8, 8)))[:-10])
    return {p.name: p for p in d.iterdir()}


def _mistakes(model: Path, f: dict[str, Path], out: Path) -> list[tuple[list[object], str]]:
    """(argv, words the error line must contain) for each mistake."""
    return [
        (["train", "--epochs", "-1"], "--epochs"),
        (["train", "--epochs", "two"], "integer"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--optimizer", "rmsprop"], "invalid choice"),
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--lr", "-0.1"], "--lr: must be a finite number > 0"),
        (["train", "--val-fraction", "1.5"], "--val-fraction"),
        (["train", "--hidden", "0"], "--hidden"),
        (["train", "--dtype", "float16"], "invalid choice"),
        (["train", "--data", "no/such/file.csv", "--out", out], "no/such/file.csv"),
        (["train", "--data", "cifar", "--out", out], "known dataset"),
        (["train", "--data", f["text.csv"], "--out", out], "non-numeric"),
        (["train", "--data", "digits", "--task", "regression", "--out", out], "classification"),
        (["train", "--data", f["empty"], "--out", out], "no IDX training files"),
        (["evaluate", f["model.safetensors"], "--data", "digits"], "model.safetensors"),
        (["evaluate", "missing.safetensors", "--data", "digits"], "missing.safetensors"),
        (["evaluate", model, "--data", "diabetes"], "regression"),
        (["evaluate", model, "--data", f["narrow.csv"]], "features"),
        (["evaluate", model, "--data", f["labels42.csv"]], "42 are not among the model's"),
        (["info", f["model.safetensors"]], "safetensors"),
        (["info", f["text.csv"]], "text.csv"),
        (["predict", model, f["narrow.csv"]], "has 3 columns, the model expects 64"),
        (["predict", model, f["nan.npy"]], "NaN"),
        (["predict", model, f["html.gz"]], "html.gz"),
        (["predict", model, f["short-idx3-ubyte"]], "short-idx3-ubyte"),
        (["predict", model, "nothing.csv"], "nothing.csv"),
        (["predict", model, f["narrow.csv"], "--output", out / "p.txt"], ".csv or .npy"),
        (["predict", model, f["narrow.csv"], "--output", out.parent / "p.csv"], "expects 64"),
        (["predict", model, f["nan.npy"], "--output", out / "p.csv"], "does not exist"),
        (["predict", f["model.safetensors"], f["narrow.csv"]], "safetensors"),
        (["gradcheck", "--threshold", "0"], "--threshold"),
    ]


def test_every_mistake_is_one_line_exit_2_and_leaves_nothing(
    digits_run: tuple[Path, str], bad_files: dict[str, Path], tmp_path: Path
) -> None:
    model = digits_run[0] / "model.safetensors"
    out = tmp_path / "out"
    for argv, words in _mistakes(model, bad_files, out):
        before = listing(tmp_path)
        code, stdout, err = run(*map(str, argv))
        command = str(argv[0])
        lines = err.strip().splitlines()
        assert code == 2, (argv, err)
        assert "Traceback" not in err, argv
        assert stdout == "", argv
        assert lines, argv
        # One line, argparse's errors too (no usage block before them).
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith(f"backprop {command}: error: "), (argv, err)
        assert words in lines[0], (argv, lines[0])
        assert listing(tmp_path) == before, argv  # no output, no temporary file


def test_failure_while_writing_results_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backprop import report

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "save", broken_save)
    out = tmp_path / "runs" / "deep" / "r1"
    code, _, err = run("train", "--data", "diabetes", "--epochs", 2, "--out", out)
    assert code == 2
    assert err.strip().splitlines() == [
        f"backprop train: failed; the checkpoint after epoch 2 is in {out}/; resume with: "
        f"backprop train --resume {out}",
        "backprop train: error: No space left on device",
    ]
    # The trained run is kept (issue 27): no half-written results, and --resume publishes it.
    assert {p.name for p in out.iterdir()} == {"checkpoint.safetensors", "run.json"}
    monkeypatch.undo()
    assert run("train", "--resume", out)[0] == 0
    assert (out / "metrics.json").exists() and not (out / "checkpoint.safetensors").exists()


def test_a_failing_plot_is_one_warning_and_the_run_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plots_in_process: None
) -> None:
    from backprop import plots

    def broken_plot(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_loss", broken_plot)
    out = tmp_path / "r1"
    code, stdout, err = run("train", "--data", "diabetes", "--epochs", 2, "--out", out)
    assert code == 0, err
    assert err.strip().splitlines() == [
        "backprop train: warning: loss.png not written: [Errno 28] No space left on device"
    ]
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "metrics.json", "history.csv"}
    assert load(out / "model.safetensors").net.n_inputs == 10
    assert "loss.png" not in stdout.splitlines()[-1]


def test_a_warning_is_one_line_of_the_command_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from backprop.cli import evaluate

    def warns(args: object) -> int:
        for _ in range(2):  # the same warning from two places: said once
            warnings.warn("features lie far\nfrom the range", UserWarning, stacklevel=1)
            warnings.warn("features lie far\nfrom the range", UserWarning, stacklevel=2)
        warnings.warn("another", RuntimeWarning, stacklevel=1)
        return 0

    hook = warnings.showwarning
    monkeypatch.setattr(evaluate, "run", warns)
    code, _, err = run("evaluate", "model.safetensors")
    assert code == 0
    assert err.splitlines() == [
        "backprop evaluate: warning: features lie far from the range",
        "backprop evaluate: warning: another",
    ]
    assert warnings.showwarning is hook  # the command's hook is gone with it


def test_evaluate_on_far_inputs_warns_in_one_line(
    digits_run: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = digits_run
    ds = load_dataset("digits", seed=0)
    far = tmp_path / "far.csv"
    np.savetxt(far, np.column_stack([np.asarray(ds.X_test) * 100, ds.y_test]), delimiter=",")
    code, stdout, err = run("evaluate", out / "model.safetensors", "--data", far)
    assert code == 0 and "test accuracy" in stdout
    assert err.splitlines() == [
        "backprop evaluate: warning: input values lie in 0..1600, far from the training range "
        "0..16 (the model divides by 16 itself: give raw values); predictions may be wrong"
    ]


def test_ctrl_c_exits_130_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backprop import run as runs

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "train", interrupted)
    code, _, err = run("train", "--data", "diabetes", "--out", tmp_path / "r", "--quiet")
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err
    assert listing(tmp_path) == set()


def test_divergence_names_the_learning_rate_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code, _, err = run(
        "train", "--data", "diabetes", "--task", "regression", "--optimizer", "sgd",
        "--schedule", "constant", "--lr", "1e6", "--epochs", 3, "--out", out, "--quiet",
    )  # fmt: skip
    assert code == 1
    # The --lr typed, the schedule's value then (constant: the same), a tenth to try.
    assert err.splitlines() == [
        "backprop train: error: training diverged in epoch 1 (the loss became NaN or "
        "infinite) with --lr 1e+06, the schedule being at 1e+06 then; try --lr 100000"
    ]
    assert listing(tmp_path) == set()


def test_divergence_names_the_scheduled_rate_not_a_number_never_typed(tmp_path: Path) -> None:
    """With a warm-up schedule the rate at divergence is below --lr; both are named."""
    code, _, err = run(
        "train", "--data", "diabetes", "--optimizer", "sgd", "--schedule", "onecycle",
        "--lr", "1e6", "--epochs", 3, "--out", tmp_path / "r", "--quiet",
    )  # fmt: skip
    assert code == 1
    (line,) = err.splitlines()
    head, _, rest = line.partition(" with --lr 1e+06, the schedule being at ")
    assert head.startswith("backprop train: error: training diverged in epoch 1 "), line
    scheduled = float(rest.split(" then;")[0])
    assert 0 < scheduled < 1e6
    assert rest.endswith("; try --lr 100000"), line


# ------------------------------------------------------ messages a new user meets first


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (
            ["train", "--hidden", "0"],
            "backprop train: error: --hidden: must be a whole number >= 1, got '0' "
            "(see backprop train --help)",
        ),
        (
            ["train", "--lr", "-1"],
            "backprop train: error: --lr: must be a finite number > 0, got '-1' "
            "(see backprop train --help)",
        ),
        (
            ["train", "--epochs", "0"],
            "backprop train: error: --epochs: must be a whole number >= 1, got '0' "
            "(see backprop train --help)",
        ),
        (
            ["train", "--val-fraction", "1.5"],
            "backprop train: error: --val-fraction: must be a number in [0, 1), got '1.5' "
            "(see backprop train --help)",
        ),
        (
            ["train", "--hiden", "64"],
            "backprop train: error: unrecognized argument --hiden; did you mean --hidden?",
        ),
        (
            ["evaluate", "m.safetensors", "--jsn"],
            "backprop evaluate: error: unrecognized argument --jsn; did you mean --json?",
        ),
        (
            ["train", "--zzzzzz"],
            "backprop train: error: unrecognized argument --zzzzzz; see backprop train --help",
        ),
    ],
)
def test_usage_errors_are_one_line_naming_the_flag(argv: list[str], first_line: str) -> None:
    code, stdout, err = run(*argv)
    assert code == 2 and stdout == ""
    assert err.splitlines() == [first_line]  # no usage block before it


def test_no_arguments_prints_the_help() -> None:
    code, stdout, err = run()
    assert code == 2 and err == ""
    assert stdout.splitlines()[0] == "usage: backprop [-h] [--version] COMMAND ..."
    assert all(c in stdout for c in ("train", "evaluate", "predict", "info", "gradcheck"))


def test_mnist_not_found_names_the_data_dir_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path))
    code, _, err = run("train", "--data", "mnist", "--data-dir", tmp_path, "--out", tmp_path / "r")
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith("backprop train: error: dataset 'mnist' not found; looked in: ")
    assert line.endswith("or pass data_dir / --data-dir DIR)")


def test_quiet_keeps_the_line_saying_where_the_results_are(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code, stdout, err = run("train", "--data", "diabetes", "--epochs", 2, "--out", out, "--quiet")
    assert code == 0 and err == ""
    assert stdout.splitlines() == [
        f"results in {out}/: history.csv, loss.png, metrics.json, model.safetensors"
    ]


def test_regression_summary_and_evaluate_label_the_loss(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code, stdout, err = run("train", "--data", "diabetes", "--epochs", 2, "--out", out)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    ds = load_dataset("diabetes")
    model = load(out / "model.safetensors")
    o = model.predict(ds.X_test).astype(np.float64)
    half_mse = 0.5 * np.mean((o - ds.y_test) ** 2)  # J = 1/(2n) sum (y - o)^2
    assert m["test_loss"] == pytest.approx(half_mse, rel=1e-4)
    first = (
        f"diabetes: test RMSE {m['test_rmse']:.4g} (predicting the mean: "
        f"{m['baseline_rmse']:.4g}) on {len(ds.X_test)} test examples, "
        f"test loss (half the mean squared error) {m['test_loss']:.4g}"
    )
    assert stdout.splitlines()[0] == first
    # evaluate: the same line, and --data defaults to the dataset the model records.
    code, text, err = run("evaluate", out / "model.safetensors")
    assert code == 0, err
    assert text.splitlines() == [first]


def test_info_prints_the_values_the_run_used_as_help_spells_them(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert run("train", "--data", "diabetes", "--hidden", 4, "--out", out, "--quiet")[0] == 0
    code, text, err = run("info", out / "model.safetensors")
    assert code == 0, err
    lines = text.splitlines()
    assert "  epochs: auto (9, or more on a small dataset: at least 1500 updates)" in lines
    assert "  patience: 0 (no early stopping)" in lines
    assert not [line for line in lines if line.endswith(": None")]


def test_interrupt_prints_the_resume_command_as_invoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plots_in_process: None
) -> None:
    from backprop import plots

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # after the last epoch's checkpoint

    monkeypatch.setattr(plots, "plot_loss", interrupted)
    out = tmp_path / "r"
    argv = [".venv/bin/backprop", "train", "--data", "diabetes", "--epochs", "2", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main()  # argv from sys.argv, as the installed script runs it
    assert code == 130
    (line,) = err.getvalue().splitlines()
    assert line.startswith("backprop train: interrupted; the checkpoint after epoch 2 is in ")
    assert line.endswith(f"; resume with: .venv/bin/backprop train --resume {out}")


def test_gradcheck_lists_no_activation_without_a_hidden_layer() -> None:
    code, text, _ = run("gradcheck")
    assert code == 0
    rows = [line.split()[:3] for line in text.splitlines() if line.startswith("MLP[7, 3]")]
    assert rows == [
        ["MLP[7,", "3]", "linear"],
        ["MLP[7,", "3]", "linear"],
    ]


# ---------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", sorted(HELP_FLAGS))
def test_help_mentions_every_flag_and_default(command: str) -> None:
    code, text, _ = run(command, "--help")
    assert code == 0
    for flag in HELP_FLAGS[command]:
        assert flag in text, (command, flag)
    if command == "train":
        from backprop.config import AUTO_EPOCHS, TrainConfig

        config = TrainConfig()
        flat = " ".join(text.split())
        assert config.epochs is None and f"(default: auto: {AUTO_EPOCHS}, or more" in flat
        assert f"(default: {config.lr})" in flat
        assert f"(default: {config.optimizer})" in flat
        assert "(default: digits)" in flat


@pytest.mark.parametrize("buffered", [True, False])
def test_output_into_a_closed_pipe_ends_quietly(
    digits_run: tuple[Path, str], buffered: bool
) -> None:
    """``backprop info MODEL | head -3``: the reader is gone before the output is written
    (at the end, from stdout's buffer, as in a terminal; or by each print, unbuffered)."""
    model = digits_run[0] / "model.safetensors"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "backprop.cli", "info", model], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: every write fails
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_installed_entry_point_runs(digits_run: tuple[Path, str]) -> None:
    script = Path(sys.executable).parent / "backprop"
    if not script.exists():
        pytest.skip(f"no installed script at {script}: pip install -e .")
    model = digits_run[0] / "model.safetensors"
    ok = subprocess.run([script, "info", model], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "parameters:" in ok.stdout
    bad = subprocess.run(
        [script, "train", "--batch-size", "0"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "backprop train: error: --batch-size: must be a whole number >= 1, got '0' "
        "(see backprop train --help)"
    ]


@pytest.mark.parametrize("module", ["backprop", "backprop.cli"])
def test_python_dash_m_runs_the_command(digits_run: tuple[Path, str], module: str) -> None:
    model = digits_run[0] / "model.safetensors"
    ok = subprocess.run(
        [sys.executable, "-m", module, "info", model], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "parameters:" in ok.stdout


def test_string_labels_train_predict_evaluate_info_from_another_directory(tmp_path, monkeypatch):
    """Issue 28: iris as users have it (an id column, string labels first)."""
    import sklearn.datasets

    iris = sklearn.datasets.load_iris()
    data = tmp_path / "iris.csv"
    rows = ["patient,species,sl,sw,pl,pw"] + [
        f"p{i},{iris.target_names[c]},{','.join(map(str, x))}"
        for i, (x, c) in enumerate(zip(iris.data.tolist(), iris.target, strict=True))
    ]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    code, _, err = run("train", "--data", data, "--out", out, "--epochs", 20, "--quiet")
    assert code == 2 and "which column is the target?" in err
    code, _, err = run("train", "--data", data, "--target", "species", "--out", out, "--quiet")
    assert code == 2 and "--drop patient" in err
    argv = ["--data", data, "--target", "species", "--drop", "patient", "--out", out]
    code, text, err = run("train", *argv, "--epochs", 20)
    assert code == 0, err
    assert "target column 'species'" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["target"] == "species"
    model = out / "model.safetensors"
    code, text, _ = run("predict", model, data)  # text columns other than inputs: ignored
    assert code == 0 and set(text.split()[1:]) <= set(iris.target_names)
    _, text, _ = run("info", model)
    assert f"data:            {data}, target column 'species', dropped patient" in text
    monkeypatch.chdir(tmp_path.parent)  # the model finds its data by its absolute path
    code, text, err = run("evaluate", model, "--json")
    assert code == 0, err
    assert json.loads(text)["n_test"] == 30
    code, text, err = run("evaluate", model, "--data", data, "--json")
    assert code == 0, err
    assert json.loads(text)["n_test"] == 30  # the training file: its held-out split
    other = tmp_path / "other.csv"
    other.write_text(
        "\n".join(
            ["sl,sw,pl,pw,class"]
            + [",".join([*r.split(",")[2:], r.split(",")[1]]) for r in rows[1:]]
        )
        + "\n"
    )
    code, text, err = run("evaluate", model, "--data", other, "--json")
    assert code == 0, err
    assert json.loads(text)["n_test"] == 150  # another file: every row
