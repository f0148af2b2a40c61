"""Interrupted training: Ctrl-C, SIGTERM and SIGKILL, checkpoints, ``train --resume``.

Real signals go to a real ``backprop train`` process: the test waits until the first
checkpoint file exists, signals the process, and checks the exit status, the one-line
message, that nothing looks like a finished run, and that running the printed resume
command gives bit for bit the model file and history of an uninterrupted run with the same
seed (the reference is that run itself, in another process with the same thread
settings; only the wall-clock column is left out). SIGKILL lands at random moments while a
process rewrites a large checkpoint in a loop: each time, the file must hold one whole
save, never a mix. The refusals of ``--resume`` run in-process through ``cli.main``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

from backprop import _fileutil, cli, report
from backprop.checkpoint import load_checkpoint
from backprop.config import TrainConfig

SCRIPT = Path(sys.executable).parent / "backprop"
# One BLAS thread: identical arithmetic in every process, and faster on 2 cores.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
EPOCHS = 10
# Small data, many small batches: ~40 ms an epoch, so a signal sent right after the
# first checkpoint lands well before the run could finish.
DIGITS = ["--data", "digits", "--hidden", "128", "128", "--batch-size", "4", "--epochs",
          str(EPOCHS), "--seed", "3", "--quiet"]  # fmt: skip
# In-process runs for the refusals: diabetes plots only the loss curve (fast).
DIABETES = ["--data", "diabetes", "--hidden", "8", "--epochs", "4", "--quiet"]
RUN_FILES = {"checkpoint.safetensors", "run.json"}

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no installed script {SCRIPT}")


def _terminal_sigint() -> None:
    # A background child of a non-interactive shell (or of some test runners) inherits
    # SIGINT ignored; in a terminal it is the default, which Python turns into
    # KeyboardInterrupt. Start the child as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(*argv: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=_terminal_sigint,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _signal_after_next_checkpoint(
    out: Path, sig: signal.Signals, *argv: str | Path
) -> tuple[int, str]:
    """Start ``backprop train ARGV``; send ``sig`` as soon as it has (re)written the
    checkpoint in ``out`` (a new file: ``os.replace`` gives it a new inode)."""
    ck = out / "checkpoint.safetensors"
    before = ck.stat().st_ino if ck.exists() else None
    proc = _spawn("train", *argv)
    deadline = time.monotonic() + 60
    while not ck.exists() or ck.stat().st_ino == before:
        assert proc.poll() is None, f"run ended before a new checkpoint: {_finish(proc)}"
        assert time.monotonic() < deadline, "no new checkpoint after 60 s"
        time.sleep(0.002)
    proc.send_signal(sig)
    code, _, err = _finish(proc)
    return code, err


def _check_interrupted(out: Path, code: int, err: str, previous_epoch: int) -> int:
    """Exit 130, one line ending in the exact resume command, only the checkpoint and
    the run record in ``out``; returns the checkpoint's epoch."""
    assert code == 130, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backprop train: interrupted"), err
    # Nothing that looks like a finished run, and no staging directory beside --out.
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    epoch = load_checkpoint(out / "checkpoint.safetensors").meta["epoch"]
    assert previous_epoch < epoch < EPOCHS
    assert f"after epoch {epoch}" in lines[0]
    command = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert Path(command[0]).name == "backprop"  # the program as invoked
    assert command[1:] == ["train", "--resume", str(out)]
    return epoch


def _history_rows(path: Path) -> list[dict[str, str]]:
    """history.csv without its wall-clock column, as the exact text of each number."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        del row["seconds"]
    return rows


def _assert_same_run(got: Path, want: Path, epochs: int) -> None:
    """Same model file tensors (bit for bit), metadata, history and metrics."""
    a = safetensors.numpy.load_file(got / "model.safetensors")
    b = safetensors.numpy.load_file(want / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert _history_rows(got / "history.csv") == _history_rows(want / "history.csv")
    assert len(_history_rows(want / "history.csv")) == epochs
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (got, want))
    ma.pop("train_seconds"), mb.pop("train_seconds")
    ma.pop("run_seconds"), mb.pop("run_seconds")
    assert ma == mb


# ---------------------------------------------------------- Ctrl-C, SIGTERM, SIGKILL


def test_interrupted_by_sigint_sigterm_and_sigkill_then_resumed_is_bit_identical(
    tmp_path: Path,
) -> None:
    # The uninterrupted reference runs alongside (2 cores), in its own directory.
    reference = tmp_path / "reference" / "run"
    reference.parent.mkdir()
    uninterrupted = _spawn("train", *DIGITS, "--out", reference)
    out = tmp_path / "interrupted" / "run"
    out.parent.mkdir()

    # Ctrl-C right after the first checkpoint.
    code, err = _signal_after_next_checkpoint(out, signal.SIGINT, *DIGITS, "--out", out)
    epoch = _check_interrupted(out, code, err, 0)
    # The printed command, resumed and stopped by SIGTERM after another epoch.
    code, err = _signal_after_next_checkpoint(out, signal.SIGTERM, "--resume", out)
    epoch = _check_interrupted(out, code, err, epoch)
    # Resumed again and killed hard: no message, but the checkpoint is intact.
    code, err = _signal_after_next_checkpoint(out, signal.SIGKILL, "--resume", out)
    assert code == -signal.SIGKILL
    names = {p.name for p in out.iterdir()}
    assert RUN_FILES <= names  # perhaps a hidden temporary file of a save cut short
    assert all(n.startswith(".checkpoint.safetensors.") for n in names - RUN_FILES), names
    killed_ck = load_checkpoint(out / "checkpoint.safetensors")
    killed, killed_rows = killed_ck.meta, killed_ck.tensors["history"].tolist()
    assert killed["epoch"] > epoch

    code, stdout, err = _finish(_spawn("train", "--resume", out, "--quiet"))
    assert (code, err) == (0, "") and len(stdout.splitlines()) <= 1, (stdout, err)
    code, _, err = _finish(uninterrupted)
    assert code == 0, err
    # Finished: the same files (checkpoint, run record and temporaries gone) and results.
    assert {p.name for p in out.iterdir()} == {p.name for p in reference.iterdir()}
    _assert_same_run(out, reference, EPOCHS)
    # And it did continue, not start over: the first epochs' rows, wall times included,
    # are those the killed processes recorded.
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(killed_rows) == killed["epoch"]
    for row, saved in zip(rows, killed_rows, strict=False):
        assert [float(v) for v in row[: len(saved)]] == [float(v) for v in saved]


# -------------------------------------------------------------------- SIGKILL mid-save

SAVER = r"""
import pathlib, sys, time
import numpy as np
from backprop.network import MLP
from backprop.optim import make_optimizer
from backprop.checkpoint import save_checkpoint
from backprop.trainer import Trainer

def slow_disk(self, data):
    # The bytes trickle out in ten pieces, so that most kills land in the middle of
    # writing a file (on a fast disk writing is a small part of a save).
    with open(self, "wb") as f:
        for i in range(10):
            f.write(data[i * len(data) // 10 : (i + 1) * len(data) // 10])
            f.flush()
            time.sleep(0.005)
    return len(data)

pathlib.Path.write_bytes = slow_disk
net = MLP([784, 256, 10], dtype=np.float64, seed=0)  # ~5 MB a checkpoint with Adam
opt = make_optimizer("adam", net.params, lr=1e-3)
trainer = Trainer(net, opt, batch_size=32)
for k in range(1, 10**9):
    for p in net.params.values():
        p.fill(k)  # every tensor of save k holds k: a mix of two saves shows
    trainer.epoch = k
    save_checkpoint(sys.argv[1], trainer)
    print(k, flush=True)  # acknowledged: save k is complete
"""


def test_sigkill_mid_save_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.safetensors"
    rng = random.Random(7)
    mid_save = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True, env=ENV
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "1"  # its first save is on disk
        time.sleep(rng.uniform(0.0, 0.1))
        proc.kill()
        acknowledged = [int(line) for line in [1, *proc.communicate(timeout=30)[0].split()]]
        ck = load_checkpoint(path)  # never a torn file
        saved = ck.meta["epoch"]
        # The last acknowledged save, or the one whose rename had just happened.
        assert saved in (acknowledged[-1], acknowledged[-1] + 1)
        for name, tensor in ck.tensors.items():
            if name.startswith("param."):
                assert np.all(tensor == saved), name
        strays = sorted(p.name for p in tmp_path.iterdir() if p != path)
        # The only other files: hidden temporaries of a killed save, which nothing opens.
        assert all(s.startswith(".checkpoint.safetensors.") and s.endswith(".tmp") for s in strays)
        if strays:
            mid_save += 1
            for s in strays:
                (tmp_path / s).unlink()
    # The kills did land mid-save (a loop iteration is mostly writing), not only between.
    assert mid_save >= 2, mid_save


# ---------------------------------------------------------------- in-process helpers


def run(*argv: str | Path) -> tuple[int, str, str]:
    """``backprop ARGV`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def interrupt_after_save(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Ctrl-C right after the n-th checkpoint save of the next run (n=0: before any)."""
    from backprop import checkpoint

    real = checkpoint.save_checkpoint
    calls = []
    monkeypatch.setattr(checkpoint, "CHECKPOINT_INTERVAL", 0.0)  # a save every epoch

    def save(path: Path, state: checkpoint.TrainerState, meta: dict | None = None) -> Path:
        if len(calls) == n:
            raise KeyboardInterrupt
        calls.append(path)
        return real(path, state, meta)

    monkeypatch.setattr(checkpoint, "save_checkpoint", save)


def assert_one_error_line(err: str, *words: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backprop train: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A diabetes run interrupted after its first epoch's checkpoint."""
    out = tmp_path / "run"
    interrupt_after_save(monkeypatch, 1)
    code, _, err = run("train", *DIABETES, "--out", out)
    monkeypatch.undo()
    assert code == 130, err
    assert {p.name for p in out.iterdir()} == RUN_FILES
    return out


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ in-process resume


def test_interrupted_twice_then_resumed_equals_uninterrupted(
    tmp_path: Path, interrupted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    interrupt_after_save(monkeypatch, 2)  # the resumed run is interrupted again
    code, _, err = run("train", "--resume", interrupted)
    assert code == 130 and "after epoch 3" in err, err
    assert signal.getsignal(signal.SIGTERM) is before  # the CLI's handler is removed again
    monkeypatch.undo()
    code, _, err = run("train", "--resume", interrupted, "--quiet")
    assert code == 0, err
    reference = tmp_path / "reference"
    code, _, err = run("train", *DIABETES, "--out", reference)
    assert code == 0, err
    _assert_same_run(interrupted, reference, 4)
    assert {p.name for p in interrupted.iterdir()} == {p.name for p in reference.iterdir()}


def test_interrupt_before_the_first_checkpoint_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_after_save(monkeypatch, 0)
    code, _, err = run("train", *DIABETES, "--out", tmp_path / "new" / "run")
    assert code == 130
    assert err.strip() == "backprop train: interrupted; nothing was written"
    assert list(tmp_path.iterdir()) == []  # not even the parent it created


def test_fresh_run_with_force_clears_an_earlier_checkpoint(
    interrupted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --force starts over: the old checkpoint must not be resumed by accident.
    code, _, err = run("train", *DIABETES, "--seed", "1", "--out", interrupted, "--force")
    assert code == 0, err
    assert not (interrupted / "checkpoint.safetensors").exists()
    assert json.loads((interrupted / "metrics.json").read_text())["config"]["seed"] == 1


def test_resume_accepts_flags_that_repeat_the_recorded_values(interrupted: Path) -> None:
    code, _, err = run(
        "train", "--resume", interrupted, "--data", "diabetes", "--hidden", "8", "--seed", "0",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err


# ----------------------------------------------------------------- --resume refusals


def _corrupt_truncated(d: Path) -> None:
    ck = d / "checkpoint.safetensors"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])


def _corrupt_garbage(d: Path) -> None:
    (d / "checkpoint.safetensors").write_bytes(b"<html>404 Not Found</html>")


def _no_checkpoint(d: Path) -> None:
    (d / "checkpoint.safetensors").unlink()


def _no_run_record(d: Path) -> None:
    (d / "run.json").unlink()


def _bad_run_record(d: Path) -> None:
    (d / "run.json").write_text('{"format": "backprop-run", "version": 1, "data": ')


def _foreign_run_record(d: Path) -> None:
    (d / "run.json").write_text('{"format": "something-else"}')


def _finished(d: Path) -> None:
    (d / "metrics.json").write_text("{}")


@pytest.mark.parametrize(
    ("damage", "args", "words"),
    [
        (_no_checkpoint, [], ["no checkpoint.safetensors there", "nothing to resume"]),
        (_corrupt_truncated, [], ["checkpoint.safetensors", "not a readable checkpoint"]),
        (_corrupt_garbage, [], ["checkpoint.safetensors", "not a readable checkpoint"]),
        (_no_run_record, [], ["run.json: missing"]),
        (_bad_run_record, [], ["run.json: not valid JSON"]),
        (_foreign_run_record, [], ["run.json: not a backprop run record"]),
        (_finished, [], ["holds a finished run"]),
        (None, ["--epochs", "9"], ["--epochs 9", "recorded: 4", "conflicts"]),
        (None, ["--hidden", "8", "8"], ["--hidden [8, 8]", "recorded: [8]"]),
        (None, ["--data", "digits"], ["--data digits", "recorded: diabetes"]),
        (None, ["--patience", "2"], ["--patience 2", "recorded: 0"]),
        (None, ["--target", "y"], ["--target y", "recorded: not given"]),
        (None, ["--seed", "0", "--lr", "0.5"], ["--lr 0.5", f"recorded: {TrainConfig().lr}"]),
        (None, ["--force"], ["--force cannot be combined"]),
        (None, ["--out", "elsewhere"], ["--out cannot be combined"]),
    ],
    ids=lambda v: getattr(v, "__name__", None) or (" ".join(v) if isinstance(v, list) else None),
)
def test_resume_refusals_are_one_line_and_change_nothing(
    interrupted: Path, damage, args: list[str], words: list[str]
) -> None:
    if damage is not None:
        damage(interrupted)
    before = listing(interrupted.parent)
    code, stdout, err = run("train", "--resume", interrupted, *args)
    assert (code, stdout) == (2, ""), err
    assert_one_error_line(err, *words)
    assert listing(interrupted.parent) == before  # the checkpoint is never thrown away


def test_resume_a_missing_directory(tmp_path: Path) -> None:
    code, _, err = run("train", "--resume", tmp_path / "nope")
    assert code == 2
    assert_one_error_line(err, "nope: no such directory")


def test_resume_refuses_a_checkpoint_of_another_architecture(
    tmp_path: Path, interrupted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    interrupt_after_save(monkeypatch, 1)
    code, _, err = run("train", *DIABETES[:3], "16", *DIABETES[4:], "--out", other)
    assert code == 130, err
    monkeypatch.undo()
    shutil.copy(other / "checkpoint.safetensors", interrupted / "checkpoint.safetensors")
    code, _, err = run("train", "--resume", interrupted)
    assert code == 2
    assert_one_error_line(err, "are from different runs")
    # The record copied too: the run itself is consistent, and resumes as the other run.
    shutil.copy(other / "run.json", interrupted / "run.json")
    code, _, err = run("train", "--resume", interrupted, "--quiet")
    assert code == 0, err
    assert json.loads((interrupted / "metrics.json").read_text())["config"]["hidden"] == [16]


def test_resume_refuses_data_that_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "data.csv"
    X = rng.normal(size=(60, 3))
    np.savetxt(data, np.column_stack([X, X @ [1.0, -2.0, 0.5]]), delimiter=",")
    out = tmp_path / "run"
    interrupt_after_save(monkeypatch, 1)
    code, _, err = run("train", "--data", data, "--hidden", "4", "--epochs", "3", "--out", out)
    assert code == 130, err
    monkeypatch.undo()
    text = data.read_text().splitlines()
    text[5] = text[5].replace(text[5].split(",")[0], "7.0", 1)  # one value edited
    data.write_text("\n".join(text) + "\n")
    code, _, err = run("train", "--resume", out)
    assert code == 2
    assert_one_error_line(err, "the data changed since the run started", "blake2b")
    # Resuming from another working directory finds the file: run.json holds its
    # absolute path.
    assert json.loads((out / "run.json").read_text())["data"] == str(data.absolute())


# ------------------------------------------------------------------- atomic helper


def test_atomic_write_honours_the_umask_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    old = os.umask(0o027)
    try:
        _fileutil.atomic_write_bytes(path, b"abc")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"abc"
    assert path.stat().st_mode & 0o777 == 0o640  # 0o666 & ~0o027, as a plain open() gives
    with pytest.raises(ZeroDivisionError), _fileutil.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise ZeroDivisionError
    assert path.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


# ------------------------------------------------------ claiming the output directory

# Both processes call cli.main at the same wall-clock moment (after their imports), so
# the window between "is --out free?" and "take it" of one overlaps the other's. With
# STAMP set, the default runs/<stamp> name is that fixed text: two runs "in the same
# second" whatever the clock does.
RACER = r"""
import os, sys, time
from backprop import cli
if os.environ.get("STAMP"):  # the current time's stamp only; other uses untouched
    real = time.strftime
    time.strftime = lambda fmt, *t: real(fmt, *t) if t else os.environ["STAMP"]
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.0005)
sys.exit(cli.main(sys.argv[2:]))
"""


def _race(cwd: Path, *runs: list[str], stamp: str = "") -> list[tuple[int, str, str]]:
    start = time.time() + 2.0  # both imported by then (2 cores)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, repr(start), "train", *argv],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**ENV, "STAMP": stamp},
        )
        for argv in runs
    ]
    return [_finish(p) for p in procs]


def test_two_runs_racing_for_one_out_one_wins_the_other_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    results = _race(
        tmp_path,
        [*DIABETES, "--seed", "1", "--out", str(out)],
        [*DIABETES, "--seed", "2", "--out", str(out)],
    )
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = 1 + [code for code, _, _ in results].index(0)
    _, _, err = results[[code for code, _, _ in results].index(2)]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"backprop train: error: --out {out}"), err
    # The winner's run is whole: its own config, no checkpoint, nothing of the loser.
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == winner
    assert not (out / "checkpoint.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging left


def test_two_runs_without_out_in_the_same_second_get_two_directories(tmp_path: Path) -> None:
    results = _race(
        tmp_path, [*DIABETES, "--seed", "1"], [*DIABETES, "--seed", "2"], stamp="20990101-000000"
    )
    assert [code for code, _, _ in results] == [0, 0], results
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["20990101-000000", "20990101-000000-2"]
    seeds = {
        json.loads((tmp_path / "runs" / r / "metrics.json").read_text())["config"]["seed"]
        for r in runs
    }
    assert seeds == {1, 2}  # both results survive


@pytest.mark.parametrize("force", [False, True])
def test_a_directory_claimed_by_a_live_run_is_refused_even_while_empty(
    tmp_path: Path, force: bool
) -> None:
    # Another process (here: a child holding the same lock a run takes) has claimed
    # --out and not written anything yet: the directory is empty, yet taken.
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from backprop import rundir; "
         "fd = rundir.lock_dir(Path(sys.argv[1]), 'x'); print('held', flush=True); "
         "sys.stdin.read()", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, _, err = run("train", *DIABETES, "--out", out, *(["--force"] if force else []))
        assert code == 2
        assert_one_error_line(err, f"--out {out}", "another backprop train is running")
        assert list(out.iterdir()) == []
        code, _, err = run("train", "--resume", out)
        assert_one_error_line(err, "another backprop train is running")
    finally:
        holder.communicate("", timeout=30)
    # Released when the holder ends (as it is when a run is killed): the directory is free.
    code, _, err = run("train", *DIABETES, "--out", out)
    assert code == 0, err


# ----------------------------------------------------- interrupted while publishing


# After history.csv: between two of the renames that publish the results into --out;
# after metrics.json: the moment the run is published, before its checkpoint and run.json
# are deleted (the deletion is under the same held interrupts).
@pytest.mark.parametrize("published", ["history.csv", "metrics.json"])
def test_interrupt_while_publishing_says_the_run_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: str
) -> None:
    # A real SIGINT right after one of the renames.
    out = tmp_path / "run"
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        if Path(dst) == out / published:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace)
    code, _, err = run("train", *DIABETES, "--out", out)
    assert code == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "resume" not in lines[0], err
    assert (
        lines[0]
        == f"backprop train: interrupted after the run finished; its results are complete in {out}/"
    )
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "model.safetensors", "history.csv"} <= names
    assert not names & RUN_FILES  # no stale checkpoint to mislead a later --resume


def test_interrupt_while_printing_the_summary_says_the_run_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def summary(out: Path) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "summary_lines", summary)
    out = tmp_path / "run"
    code, _, err = run("train", *DIABETES[:-1], "--out", out)  # not --quiet
    assert code == 130
    assert "interrupted after the run finished" in err and "nothing was written" not in err
    assert (out / "metrics.json").exists()


def test_interrupt_while_drawing_plots_resumes_to_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plots_in_process: None
) -> None:
    # After the last epoch's checkpoint, before publishing: the advised resume works.
    from backprop import plots

    def plot(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "plot_loss", plot)
    out = tmp_path / "run"
    code, _, err = run("train", *DIABETES, "--out", out)
    monkeypatch.undo()
    assert code == 130 and "after epoch 4" in err, err
    command = shlex.split(err.strip().split("resume with: ", 1)[1])
    code, _, err = run(*command[1:], "--quiet")
    assert code == 0, err
    reference = tmp_path / "reference"
    code, _, err = run("train", *DIABETES, "--out", reference)
    assert code == 0, err
    _assert_same_run(out, reference, 4)


# --------------------------------------------------------------------- bounded memory

# The child caps its own address space at what it uses after importing everything plus
# HEADROOM_MB (ulimit -v, set from inside so that the cap does not depend on how much
# the interpreter and BLAS reserve on this machine), then runs the command.
CAPPED = r"""
import os, resource, sys, time
from backprop import cli, data, training  # noqa: F401  (everything a run imports)
import backprop.report, backprop.io  # noqa: F401
used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
cap = used + int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
t0 = time.monotonic()
code = cli.main(sys.argv[2:])
print(f"seconds {time.monotonic() - t0:.2f}", flush=True)
sys.exit(code)
"""
needs_proc = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")


def run_capped(
    headroom_mb: int, *argv: str | Path, cwd: Path | None = None
) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", CAPPED, str(headroom_mb), *map(str, argv)],
        capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def _idx_header(*dims: int, kind: int = 0x08) -> bytes:
    return bytes([0, 0, kind, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@needs_proc
def test_a_gzip_idx_bomb_is_refused_in_one_line_before_it_is_expanded(tmp_path: Path) -> None:
    import gzip

    # 200,000 images of zeros: 157 MB of data in a gzip file of a few hundred KB; with
    # the float copy training makes it needs more than the 300 MB the child may use.
    n = 200_000
    d = tmp_path / "bomb"
    d.mkdir()
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(_idx_header(n, 28, 28))
        zeros = bytes(28 * 28 * 1000)
        for _ in range(n // 1000):
            f.write(zeros)
    with gzip.open(d / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx_header(n) + bytes([0, 1]) * (n // 2))
    assert (d / "train-images-idx3-ubyte.gz").stat().st_size < 2_000_000
    code, out, err = run_capped(300, "train", "--data", d, "--out", tmp_path / "run")
    assert code == 2, err
    assert "Traceback" not in err and "MemoryError" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "the IDX data of shape (200000, 28, 28) needs" in lines[0]
    assert "of memory; this machine has" in lines[0]
    assert float(out.split()[1]) < 10  # refused from the header, not after reading
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb"]


def test_a_network_too_large_for_memory_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = run("train", "--data", "diabetes", "--hidden", "1000000000", "--out", out)
    assert code == 2
    assert_one_error_line(err, "--hidden 1000000000: the network needs", "TiB of memory")
    assert not out.exists()


@needs_proc
def test_csv_is_parsed_into_float32_within_twice_the_file_size(tmp_path: Path) -> None:
    # ~16 MB of text: the old reader held every cell as a Python string (about 16x).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150_000, 12))
    path = tmp_path / "big.csv"
    np.savetxt(path, X, delimiter=",", fmt="%.6g", header=",".join("abcdefghijkl"), comments="")
    size = path.stat().st_size
    code = (
        "import resource, sys\n"
        "from backprop.data import read_csv_table\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "values, header = read_csv_table(sys.argv[1])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(values.dtype, values.shape, (after - before) * 1024)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=ENV, check=True
    )
    dtype, *shape, grown = proc.stdout.replace("(", "").replace(")", "").replace(",", "").split()
    assert dtype == "float32" and [int(s) for s in shape] == [150_000, 12]
    assert int(grown) < 2 * size, (int(grown) / size, size)


# ------------------------------------------------------------- crafted model files


def _digits_model(tmp_path: Path, edit=None, params=None) -> Path:
    """A float32 digits classifier (64 -> 8 -> 10, pixels / 16, standardised) saved,
    then its metadata passed through ``edit`` (a function of the JSON dict) and its
    parameters replaced by ``params``; the file is written as safetensors directly."""
    from backprop import MLP, Model, save
    from backprop.data import Preprocessor
    from backprop.io import METADATA_KEY

    net = MLP([64, 8, 10], dtype=np.float32, seed=0)
    pre = Preprocessor(
        n_features=64, input_scale=16.0, mean=np.full(64, 0.3), scale=np.full(64, 0.4)
    )
    path = save(tmp_path / "model.safetensors", Model(net, preprocessor=pre, config={"seed": 0}))
    tensors = safetensors.numpy.load_file(path)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()[METADATA_KEY])
    if edit is not None:
        edit(meta)
    tensors.update(params or {})
    path.write_bytes(safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(meta)}))
    return path


def _inputs(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(128, dtype=np.float64).reshape(2, 64) % 17)
    return path


def _set(*keys_value):
    *keys, value = keys_value

    def edit(meta: dict) -> None:
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_set("classes", [10**30, *range(1, 10)]), "class labels must fit in 64 bits"),
        (_set("preprocessor", "mean", [int("9" * 401)] * 64), "mean does not fit in float64"),
        (_set("preprocessor", "scale", [1e-320] * 64), "scale is too small for float32"),
        (_set("preprocessor", "input_scale", 1e-300), "input_scale is too small for float32"),
        (_set("config", "seed", None), "config seed must be a non-negative integer"),
        (_set("config", "seed", -3), "config seed must be a non-negative integer"),
        (_set("config", "dataset", 7), "config dataset must be a string"),
        (_set("config", [1, 2]), "config must be a JSON object"),
    ],
    ids=["label 10**30", "401-digit mean", "scale 1e-320", "input_scale 1e-300", "seed null",
         "seed -3", "dataset 7", "config a list"],
)  # fmt: skip
def test_crafted_model_metadata_is_refused_in_one_line_by_every_command(
    tmp_path: Path, edit, words: str
) -> None:
    from backprop import load
    from backprop.io import ModelFileError

    model = _digits_model(tmp_path, edit)
    with pytest.raises(ModelFileError, match=words.replace("*", r"\*")):
        load(model)
    x = _inputs(tmp_path)
    for argv in (["info", model], ["predict", model, x], ["evaluate", model, "--data", "digits"]):
        code, stdout, err = run(*argv)
        assert (code, stdout) == (2, ""), (argv, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert words in err and str(model) in err, err


@pytest.mark.filterwarnings("error")  # no RuntimeWarning lines before the one line
def test_weights_that_overflow_say_the_model_is_broken(tmp_path: Path) -> None:
    # Finite float32 weights whose products overflow: every output is inf or NaN.
    w = np.full((8, 64), 3e38, dtype=np.float32)
    model = _digits_model(tmp_path, params={"0.weight": w})
    x = _inputs(tmp_path)
    for argv in (["predict", model, x], ["predict", model, x, "--proba"],
                 ["evaluate", model, "--data", "digits"]):  # fmt: skip
        code, stdout, err = run(*argv)
        assert code != 0 and stdout == "", (argv, stdout)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "the model is broken" in err, err


def test_save_refuses_a_deeply_nested_config_with_a_value_error(tmp_path: Path) -> None:
    from backprop import MLP, Model, save

    config: dict = {}
    inner = config
    for _ in range(100_000):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(ValueError, match="nested too deeply"):
        save(tmp_path / "m.safetensors", Model(MLP([2, 3, 2]), config=config))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------- tampered checkpoints and run records


def _tamper_meta(edit):
    def damage(d: Path) -> None:
        ck = d / "checkpoint.safetensors"
        tensors = safetensors.numpy.load_file(ck)
        with safetensors.safe_open(str(ck), framework="numpy") as f:
            meta = json.loads(f.metadata()["backprop_checkpoint"])
        edit(meta, tensors)
        data = safetensors.numpy.save(tensors, metadata={"backprop_checkpoint": json.dumps(meta)})
        ck.write_bytes(data)

    damage.__name__ = edit.__name__
    return damage


def _tamper_record(edit):
    def damage(d: Path) -> None:
        record = json.loads((d / "run.json").read_text())
        edit(record)
        (d / "run.json").write_text(json.dumps(record))

    damage.__name__ = edit.__name__
    return damage


def rng_null(m, t):
    m["rng"] = None


def rng_garbage(m, t):
    m["rng"] = {"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}}


def epoch_null(m, t):
    m["epoch"] = None


def epoch_million(m, t):
    m["epoch"] = 1_000_000


def epoch_negative(m, t):
    m["epoch"] = -50


def history_int(m, t):
    m["history"] = 3


def no_layer_sizes(m, t):
    del m["layer_sizes"]


def stop_string(m, t):
    m["stop"] = "no"


def callbacks_int(m, t):
    m["callbacks"] = 5


def run_a_list(m, t):
    m["run"] = [1]


def weight_broadcast(m, t):
    t["param.W1"] = t["param.W1"][:1].copy()  # (1, m): np.copyto would broadcast it


def weight_float64(m, t):
    t["param.b1"] = t["param.b1"].astype(np.float64)


def weight_nan(m, t):
    t["param.W2"][0, 0] = np.nan


def data_null(r):
    r["data"] = None


def task_other(r):
    r["task"] = "clustering"


def config_hidden_int(r):
    r["config"]["hidden"] = 5


def config_lr_string(r):
    r["config"]["lr"] = "fast"


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_tamper_meta(rng_null), "'rng' is not a state"),
        (_tamper_meta(rng_garbage), "'rng' is not a state"),
        (_tamper_meta(epoch_null), "'epoch' is None"),
        (_tamper_meta(epoch_million), "'epoch' is 1000000, but its history holds 1"),
        (_tamper_meta(epoch_negative), "'epoch' is -50"),
        (_tamper_meta(history_int), "'history' is malformed"),
        (_tamper_meta(no_layer_sizes), "layer sizes None"),
        (_tamper_meta(stop_string), "'stop' is 'no'"),
        (_tamper_meta(callbacks_int), "'callbacks' is not a JSON object"),
        (_tamper_meta(run_a_list), "checkpoint.safetensors: not a usable checkpoint"),
        (_tamper_meta(weight_broadcast), "param.W1 is float32 (1, 8)"),
        (_tamper_meta(weight_float64), "param.b1 is float64 (8,)"),
        (_tamper_meta(weight_nan), "param.W2 holds NaN"),
        (_tamper_record(data_null), "run.json: incomplete run record (missing or bad: data)"),
        (_tamper_record(task_other), "missing or bad: task"),
        (_tamper_record(config_hidden_int), "run.json: bad training config"),
        (_tamper_record(config_lr_string), "run.json: bad training config"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_tampered_checkpoints_and_run_records_are_refused_and_kept(
    interrupted: Path, damage, words: str
) -> None:
    damage(interrupted)
    before = listing(interrupted.parent)
    code, stdout, err = run("train", "--resume", interrupted)
    assert (code, stdout) == (2, ""), err
    assert_one_error_line(err, words)
    assert listing(interrupted.parent) == before


# ------------------------------------------- inputs that train and predict treat alike


def _predict(model: Path, inputs: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["predict", str(model), str(inputs)])
    return code, out.getvalue(), err.getvalue()


def _one_line(err: str, command: str, *words: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"backprop {command}: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_val_fraction_zero_trains_a_regression_set(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = run("train", *DIABETES, "--val-fraction", "0", "--out", out)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    # "none" held out: nothing monitored, the last epoch kept, no validation loss.
    assert (metrics["monitor"], metrics["kept"], metrics["epochs_run"]) == (None, "last", 4)
    assert all(row["val_loss"] == "nan" for row in _history_rows(out / "history.csv"))
    assert np.isfinite(metrics["test_rmse"])


def test_a_csv_header_of_integer_column_names_is_a_header(tmp_path: Path) -> None:
    from backprop.data import read_csv, read_csv_table

    # pandas' DataFrame(X).to_csv(index=False) names the columns 0..w-1.
    path = tmp_path / "pandas.csv"
    path.write_text("0,1,2,3\n0.5,1.5,2.5,1\n-0.5,0.25,3.0,0\n")
    values, header = read_csv_table(path)
    assert header == ["0", "1", "2", "3"]
    assert values.tolist() == [[0.5, 1.5, 2.5, 1.0], [-0.5, 0.25, 3.0, 0.0]]
    X, y, names = read_csv(path)
    assert names == ["0", "1", "2"] and y.tolist() == [1.0, 0.0] and len(X) == 2
    # Two columns of integer data whose first row happens to be "0,1" stay data rows...
    (tmp_path / "ints.csv").write_text("0,1\n1,0\n1,1\n")
    assert read_csv_table(tmp_path / "ints.csv")[1] is None
    # ...but written above a row of non-integers it is the integer-name header.
    (tmp_path / "one.csv").write_text("0\n0.25\n1.5\n")
    values, header = read_csv_table(tmp_path / "one.csv")
    assert header == ["0"] and values.ravel().tolist() == [0.25, 1.5]
    # A row of numbers that are not 0..w-1 is data, as before.
    (tmp_path / "data.csv").write_text("0,2,1\n1,0,1\n")
    assert read_csv_table(tmp_path / "data.csv")[1] is None


def test_complex_inputs_are_refused_by_train_and_predict_alike(tmp_path: Path) -> None:
    from backprop import load
    from backprop.data import DataError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "complex.npz", X=X + 1j, y=y)
    code, _, err = run("train", "--data", tmp_path / "complex.npz", "--epochs", "1",
                       "--out", tmp_path / "c")  # fmt: skip
    assert code == 2
    _one_line(err, "train", "complex", "complex128")
    assert not (tmp_path / "c").exists()
    np.savez(tmp_path / "complex_y.npz", X=X, y=y + 0j)
    code, _, err = run("train", "--data", tmp_path / "complex_y.npz", "--out", tmp_path / "cy")
    _one_line(err, "train", "complex")

    np.savez(tmp_path / "real.npz", X=X, y=y)
    code, _, err = run("train", "--data", tmp_path / "real.npz", "--epochs", "1", "--quiet",
                       "--out", tmp_path / "r")  # fmt: skip
    assert code == 0, err
    model = tmp_path / "r" / "model.safetensors"
    np.save(tmp_path / "complex_in.npy", X + 0j)
    code, out, err = _predict(model, tmp_path / "complex_in.npy")
    assert code == 2 and out == ""
    _one_line(err, "predict", "complex")
    with pytest.raises(DataError, match="complex"):
        load(model).predict(X + 0j)


def test_bool_features_train_and_predict(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.random((80, 4)) > 0.5
    y = (X[:, 0] ^ X[:, 1]).astype(np.int64)
    np.savez(tmp_path / "bool.npz", X=X, y=y)
    code, _, err = run("train", "--data", tmp_path / "bool.npz", "--epochs", "1", "--quiet",
                       "--out", tmp_path / "r")  # fmt: skip
    assert code == 0, err
    np.save(tmp_path / "bool_in.npy", X[:5])
    code, out, err = _predict(tmp_path / "r" / "model.safetensors", tmp_path / "bool_in.npy")
    assert code == 0, err
    assert out.splitlines()[0] == "prediction" and len(out.splitlines()) == 6


def test_a_one_column_csv_is_predicted_for_a_one_feature_model(tmp_path: Path) -> None:
    from backprop import load

    x = np.linspace(-1, 1, 60)
    np.savetxt(tmp_path / "line.csv", np.c_[x, 3 * x], delimiter=",", fmt="%.6f")
    code, _, err = run("train", "--data", tmp_path / "line.csv", "--epochs", "1", "--quiet",
                       "--out", tmp_path / "r")  # fmt: skip
    assert code == 0, err
    model = tmp_path / "r" / "model.safetensors"
    for text in ("0.5\n-0.25\n0.75\n", "x\n0.5\n-0.25\n0.75\n"):
        (tmp_path / "in.csv").write_text(text)
        code, out, err = _predict(model, tmp_path / "in.csv")
        assert code == 0, err
        got = [float(v) for v in out.splitlines()[1:]]
        want = load(model).predict(np.array([[0.5], [-0.25], [0.75]]))
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("bad", [-1, 10, 127])
def test_mnist_refuses_a_label_outside_0_to_9(tmp_path: Path, bad: int) -> None:
    d = tmp_path / "mnist"
    d.mkdir()
    images = _idx_header(20, 2, 2) + bytes(range(80))
    # Signed bytes (IDX type 0x09) can hold -1: an eleventh class if not refused.
    labels = _idx_header(20, kind=0x09) + np.array([0, 1] * 9 + [bad, 2], np.int8).tobytes()
    test_labels = _idx_header(20, kind=0x09) + np.array([0, 1] * 10, np.int8).tobytes()
    for stem, blob in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                       ("t10k-images-idx3-ubyte", images),
                       ("t10k-labels-idx1-ubyte", test_labels)):  # fmt: skip
        (d / stem).write_bytes(blob)
    code, _, err = run("train", "--data", "mnist", "--data-dir", tmp_path, "--out", tmp_path / "r")
    assert code == 2
    _one_line(err, "train", f"label {bad} out of range for mnist (classes 0..9)")


# ------------------------------------------------ the Python API: the ValueError family


@pytest.mark.parametrize("bad", [np.inf, np.nan, -1.0, 3e38])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # float32 overflow of the sum
def test_loss_and_grads_refuses_weights_that_are_not_finite(bad: float) -> None:
    from backprop import MLP

    net = MLP([3, 4, 2], dtype=np.float32, seed=0)
    X = np.ones((4, 3), np.float32)
    y = np.array([0, 1, 0, 1])
    # 3e38 is a finite float32, but four of them sum to infinity in float32.
    weights = [1.0, bad, 1.0, 1.0] if bad != 3e38 else [bad] * 4
    with pytest.raises(ValueError, match="finite non-negative numbers"):
        net.loss_and_grads(X, y, sample_weight=weights)
    J, grads = net.loss_and_grads(X, y, sample_weight=[1.0, 2.0, 1.0, 1.0])
    assert np.isfinite(J) and all(np.all(np.isfinite(g)) for g in grads.values())


def _fitted_edit(key, value):
    def edit(meta):
        meta["config"]["fitted"][key] = value

    return edit


def _params_edit(meta):
    meta["config"]["params"] = "x"


def _fitted_edit_whole(meta):
    meta["config"]["fitted"] = [1, 2]


@pytest.mark.parametrize(
    "edit, words",
    [
        (_fitted_edit("n_iter_", None), "config fitted must be"),
        (_fitted_edit("t_", {}), "config fitted must be"),
        (_fitted_edit("t_", -3), "config fitted must be"),
        (_fitted_edit("loss_curve_", 5), "config fitted must be"),
        (_fitted_edit("loss_curve_", [None]), "config fitted must be"),
        (_fitted_edit("loss_", "lots"), "config fitted must be"),
        (_fitted_edit("validation_scores_", 1.5), "config fitted must be"),
        (_params_edit, "config params must be a JSON object"),
        (_fitted_edit_whole, "config fitted must be"),
    ],
)
def test_estimator_load_refuses_a_crafted_file_with_a_model_file_error(
    tmp_path: Path, edit, words: str
) -> None:
    from backprop import MLPClassifier
    from backprop.io import METADATA_KEY, ModelFileError

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with pytest.warns(Warning):  # 2 iterations do not converge
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    path = est.save(tmp_path / "est.safetensors")
    tensors = safetensors.numpy.load_file(path)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()[METADATA_KEY])
    edit(meta)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(meta)}))
    with pytest.raises(ModelFileError, match=words):
        MLPClassifier.load(path)


@pytest.mark.parametrize("dtype", ["int8", np.int64, "nonsense"])
def test_load_dataset_refuses_a_dtype_that_is_not_float(dtype) -> None:
    from backprop.data import DataError, load_dataset

    # diabetes' targets go up to 346: int8 would have wrapped them silently.
    with pytest.raises(DataError, match="dtype must be a float dtype"):
        load_dataset("diabetes", dtype=dtype)
    assert load_dataset("diabetes", dtype=np.float64).y_train.max() == 346.0


# ------------------------------------------------- plots in bounded time (class 2)


def test_confusion_plot_of_400_classes_draws_the_most_confused_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backprop import plots

    c = 400
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, c, 4000)
    y_pred = y_true.copy()
    # Classes 7 and 311 are confused with each other 50 times; a few other mistakes.
    y_true[:50], y_pred[:50] = 7, 311
    y_true[50:60], y_pred[50:60] = 311, 7
    y_pred[60:80] = (y_true[60:80] + 1) % c
    names = [f"${i}$ " + "long name " * 30 for i in range(c)]
    seen: dict[str, object] = {}
    real_save = plots._save

    def spy(fig, path):
        ax = fig.axes[0]
        seen["n_texts"] = len(ax.texts)
        seen["ticks"] = [t.get_text() for t in ax.get_yticklabels()]
        seen["title"] = ax.get_title()
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    t0 = time.monotonic()
    plots.plot_confusion(y_true, y_pred, names, tmp_path / "cm.png")
    # c^2 = 160,000 cells of text took minutes and 1.7 GB; now at most 30 x 30.
    assert time.monotonic() - t0 < 60
    k = plots.MAX_CONFUSION_CLASSES
    assert seen["n_texts"] == k * k
    assert f"the {k} of {c} classes most involved in mistakes" in seen["title"]
    assert "accuracy 0.9800" in seen["title"]  # 80 mistakes in 4000, over all classes
    shown = [int(t.split("$")[1].rstrip("\\")) for t in seen["ticks"]]
    assert 7 in shown and 311 in shown and shown == sorted(shown)
    # Labels cut to a bounded length, $ still escaped (drawn literally).
    assert all(len(t) <= plots.MAX_LABEL_CHARS + 2 for t in seen["ticks"])
    assert seen["ticks"][0].startswith("\\$")


def test_plot_labels_escape_control_characters() -> None:
    from backprop.plots import plain_text

    assert plain_text("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert plain_text("x" * 100).endswith("\u2026") and len(plain_text("x" * 100)) == 40
    assert plain_text("$5 and $6") == "\\$5 and \\$6"


def test_strings_from_a_model_file_are_printed_with_control_characters_escaped(
    tmp_path: Path,
) -> None:
    from backprop import MLP, Model, save
    from backprop.data import Preprocessor

    path = save(
        tmp_path / "m.safetensors",
        Model(
            MLP([2, 3, 2], seed=0),
            preprocessor=Preprocessor(n_features=2, feature_names=("a\x1b]0;pwned\x07", "b")),
            classes=np.array(["x\x1b[2J", "é"]),
            config={"dataset": "d\x1b[31m", "seed": 0},
        ),
    )
    code, out, err = run("info", path)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "classes:         x\\x1b[2J, é" in out  # shown, accents kept
    assert "a\\x1b]0;pwned\\x07" in out and "dataset: d\\x1b[31m" in out
    code, out, err = run("evaluate", path)
    assert code == 2 and "\x1b" not in err and "d\\x1b[31m" in err
    code, out, err = run("info", "--json", path)  # JSON escapes them itself
    assert code == 0 and "\x1b" not in out and json.loads(out)["classes"][0] == "x\x1b[2J"


def test_python_train_refuses_a_network_too_large_for_memory_in_one_line() -> None:
    # The same check as the CLI's, before anything is allocated (the Python API too).
    from backprop.config import TrainConfig
    from backprop.data import load_dataset
    from backprop.run import train

    ds = load_dataset("digits")
    with pytest.raises(ValueError, match=r"^hidden=\[1000000000\]: the network needs .* of memory"):
        train(ds, TrainConfig(hidden=(1_000_000_000,)), progress=False)


# ------------------------------------------------- a full disk, data changed under a run


def enospc_on_save(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The n-th checkpoint write of the next run fails as on a full disk."""
    from backprop import checkpoint

    real = checkpoint.atomic_write_bytes
    calls: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", write)


def assert_kept(out: Path, err: str, epoch: int, *words: str) -> None:
    """The failure's two lines: what was kept and how to resume, then the error."""
    assert "Traceback" not in err
    kept, error = err.strip().splitlines()
    assert kept == (
        f"backprop train: failed; the checkpoint after epoch {epoch} is in {out}/; "
        f"resume with: backprop train --resume {out}"
    )
    assert error.startswith("backprop train: error: ")
    for word in words:
        assert word in error, (word, error)
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert load_checkpoint(out / "checkpoint.safetensors").meta["epoch"] == epoch


def test_a_full_disk_keeps_the_last_checkpoint_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, whole = tmp_path / "run", tmp_path / "whole"
    enospc_on_save(monkeypatch, 2)
    code, _, err = run("train", *DIABETES, "--out", out)
    monkeypatch.undo()
    assert code == 2
    assert_kept(out, err, 1, "checkpoint.safetensors", "No space left on device")
    # Once there is room again, the printed command finishes the run it would have been.
    code, _, err = run("train", "--resume", out)
    assert code == 0, err
    assert run("train", *DIABETES, "--out", whole)[0] == 0
    _assert_same_run(out, whole, 4)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: int) -> Iterator[Path]:
    """A real tmpfs of ``size`` bytes mounted at ``where``; skips unless root may mount."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root to mount a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_real_full_disk_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sizes first, on the ordinary disk: a run.json and an epoch-1 checkpoint.
    args = ["--data", "diabetes", "--hidden", "64", "64", "--epochs", "4", "--quiet"]
    probe = tmp_path / "probe"
    interrupt_after_save(monkeypatch, 1)
    assert run("train", *args, "--out", probe)[0] == 130
    monkeypatch.undo()
    pages = [-(-(probe / n).stat().st_size // 4096) for n in sorted(RUN_FILES)]
    # Room for run.json and one checkpoint and a half: the second checkpoint's temporary
    # file (written beside the first) runs out of space.
    size = 4096 * (pages[1] + pages[0] + pages[0] // 2 + 1)
    with small_tmpfs(tmp_path / "disk", size) as disk:
        out = disk / "run"
        code, _, err = run("train", *args, "--out", out)
        assert code == 2
        assert_kept(out, err, 1, f"{out}/checkpoint.safetensors: No space left on device")
        assert not list(out.glob(".*.tmp"))  # the failed write's temporary file is gone


class ChangeAfterEpoch:
    """A callback that changes the data file after epoch 1: truncated, or rewritten in
    place (same size, the first row's bytes flipped)."""

    def __init__(self, path: Path, how: str) -> None:
        self.path, self.how = path, how

    def __call__(self) -> Any:
        from backprop.callbacks import Callback

        target, how = self.path, self.how

        class Change(Callback):
            def on_epoch_end(self, epoch: int, log: Any, trainer: Any) -> None:
                if epoch != 1:
                    return
                if how == "truncated":
                    os.truncate(target, target.stat().st_size // 2)
                else:
                    with open(target, "r+b") as f:
                        f.seek(-64, os.SEEK_END)
                        f.write(bytes(64))
                    # Same size: the modification time tells. Pushed past the clock's
                    # granularity, as any later edit is.
                    st = target.stat()
                    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

        return Change()


def npy_data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    path = tmp_path / "d.npy"
    np.save(path, np.column_stack([X, X[:, 0] + X[:, 1] > 0]).astype(np.float32))
    return path


@pytest.mark.parametrize(("how", "said"), [("truncated", "shrank"), ("rewritten", "changed")])
def test_data_changed_mid_run_stops_it_and_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, said: str
) -> None:
    from backprop import run as runs

    data = npy_data(tmp_path)
    change = ChangeAfterEpoch(data, how)
    real = runs.train

    def train(*a: Any, callbacks: Any = (), **kw: Any) -> Any:
        return real(*a, callbacks=[*callbacks, change()], **kw)

    monkeypatch.setattr(runs, "train", train)
    out = tmp_path / "run"
    argv = ["--data", data, "--hidden", "8", "--epochs", "4", "--batch-size", "16"]
    code, _, err = run("train", *argv, "--out", out)
    monkeypatch.undo()
    assert code == 2
    assert_kept(out, err, 1, str(data), said)  # never a published result
    record = json.loads((out / "run.json").read_text())
    assert record["dataset"]["files"][str(data)]["header"].startswith("\x93NUMPY")
    code, _, err = run("train", "--resume", out)
    assert code == 2
    assert_one_error_line(err, "the data changed since the run started", str(data))
