"""Data larger than memory (issue 14 item 3): `backprop.data.Rows` reads only batch rows.

- `backprop train` on a generated float32 ``.npy`` keeps its peak resident memory far
  below the file's size (the child's ``ru_maxrss``, i.e. VmHWM);
- the run through the memory map gives the weights of the same data in memory, and of
  the old whole-array path (`Preprocessor.transform` then `fit`), bit for bit;
- the streaming statistics equal the in-memory ones;
- an uncompressed ``.npz`` member is memory-mapped, a compressed one read after a check.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backprop.config import TrainConfig
from backprop.data import DataError, Preprocessor, Rows, load_dataset, read_npz
from backprop.network import MLP
from backprop.run import train
from backprop.training import fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from out_of_core import write_file  # noqa: E402

# The child reports its own VmHWM (the peak of its resident set, file pages included):
# RUSAGE_CHILDREN would count the fork of this (large) pytest process before the exec.
MAIN = (
    "import sys; from backprop.cli import main; code = main(); "
    "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
    "sys.exit(code)"
)


def test_train_on_a_file_keeps_peak_memory_far_below_its_size(tmp_path: Path) -> None:
    # 300 MB of float32 (CI's disk and time allow it; docs/scaling.md has the 4 GB run).
    path = tmp_path / "big.npy"
    write_file(path, 95_000, 784)
    size = path.stat().st_size
    cmd = [
        sys.executable, "-c", MAIN, "train", "--data", str(path), "--epochs", "1",
        "--hidden", "16", "--out", str(tmp_path / "run"), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.split("VmHWM:")[1].split()[0]) * 1024
    # Python, NumPy, SciPy and the plots take ~120 MB; a copy of X would add 300 MB.
    assert peak < size / 2, f"peak resident {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"


def _data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12)).astype(np.float32) * 3 + 1
    y = (X[:, 0] + X[:, 1] > 2).astype(np.float32)
    path = tmp_path / "d.npy"
    np.save(path, np.column_stack([X, y]))
    return path


def test_memory_mapped_run_equals_in_memory_and_whole_array_runs(tmp_path: Path) -> None:
    config = TrainConfig(hidden=(8,), epochs=2, dtype="float64", batch_size=32)
    mapped = load_dataset(str(_data(tmp_path)), dtype=np.float64)
    assert isinstance(mapped.X_train, Rows)
    in_memory = dataclasses.replace(
        mapped, X_train=np.asarray(mapped.X_train), X_test=np.asarray(mapped.X_test)
    )
    m1, _ = train(mapped, config, progress=False)
    m2, _ = train(in_memory, config, progress=False)
    for k, p in m1.net.params.items():
        np.testing.assert_array_equal(p, m2.net.params[k])
    # The whole-array path: split copies, transform the whole arrays, then fit.
    from backprop.data import train_val_split

    X_tr, X_val, y_tr, y_val = train_val_split(
        in_memory.X_train, in_memory.y_train, config.val_fraction, seed=0
    )
    pre = Preprocessor.fit(X_tr)
    assert np.array_equal(pre.mean, m1.pre.mean) and np.array_equal(pre.scale, m1.pre.scale)
    net = MLP([12, 8, 2], loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    fit(
        net,
        pre.transform(X_tr, np.float64, warn=False),
        y_tr,
        pre.transform(X_val, np.float64, warn=False),
        y_val,
        config=config,
        progress=False,
    )
    for k, p in net.params.items():
        np.testing.assert_array_equal(p, m1.net.params[k])


def test_streaming_statistics_equal_in_memory(tmp_path: Path, monkeypatch) -> None:
    from backprop.data import rows as rows_module

    monkeypatch.setattr(rows_module, "CHUNK_ELEMENTS", 100)  # many chunks
    ds = load_dataset(str(_data(tmp_path)), test_fraction=0, dtype=np.float64)
    X = np.asarray(ds.X_train, dtype=np.float64)
    pre = Preprocessor.fit(ds.X_train)
    np.testing.assert_allclose(pre.mean, X.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(pre.scale, X.std(axis=0), rtol=1e-12)


def test_npz_members_mapped_or_checked(tmp_path: Path, monkeypatch) -> None:
    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.savez(tmp_path / "u.npz", X=X, y=np.arange(10) % 2)
    arrays = read_npz(tmp_path / "u.npz")
    assert isinstance(arrays["X"], np.memmap)
    np.testing.assert_array_equal(arrays["X"], X)
    np.savez_compressed(tmp_path / "c.npz", X=X, y=np.arange(10) % 2)
    with zipfile.ZipFile(tmp_path / "c.npz") as zf:
        assert zf.getinfo("X.npy").compress_type == zipfile.ZIP_DEFLATED
    np.testing.assert_array_equal(read_npz(tmp_path / "c.npz")["X"], X)  # in memory
    import backprop._memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 100)
    with pytest.raises(DataError, match=r"c\.npz: the compressed array X .* needs"):
        read_npz(tmp_path / "c.npz")
    read_npz(tmp_path / "u.npz")  # a mapped member is not refused: it is read by rows


def test_rows_of_a_file_cut_short_or_rewritten_refuse_in_one_line(tmp_path: Path) -> None:
    # Every positioned read checks its length, and every batch the file's size and time:
    # before, the rows past the end came back as whatever the buffer held.
    path = _data(tmp_path)
    rows = Rows(np.load(path, mmap_mode="r"))
    last = np.array([len(rows) - 1])
    want = rows.take(last).copy()
    os.truncate(path, path.stat().st_size - 13 * 4)  # the last row, cut short
    with pytest.raises(DataError, match=rf"^{path}: row 599 could not be read whole"):
        rows.take(last)
    path = _data(tmp_path)
    rows = Rows(np.load(path, mmap_mode="r"))
    np.testing.assert_array_equal(rows.take(last), want)
    with open(path, "r+b") as f:  # rewritten in place, same size
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\0")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=rf"^{path}: the file changed while in use"):
        rows.take(np.array([0]))
