"""Generative tests: mutated input files never give a traceback, a hang or a lost file.

One fuzzer per kind of input the command line reads (issue 16): a CSV and a ``.npy`` file
to ``predict``, an ``.npz`` file to ``evaluate``, an IDX image file to ``predict``, a
model file to ``info`` and ``predict``, a checkpoint and a run record to
``train --resume``.  Hypothesis mutates a valid file (bytes flipped, inserted, deleted,
the file cut short; for JSON, a value replaced or a key removed; for CSV, a cell
replaced), and a real ``backprop`` process runs on it under an address-space limit
(``RLIMIT_AS`` set in ``preexec_fn``).  Each run must:

* exit 0 with a correct result (checked against an independent reading of the file), or
  exit non-zero with ONE line on stderr and no traceback;
* finish within `SECONDS`;
* leave every file that was on disk before it as it was (a failed resume changes nothing).

Each process costs about a second of imports, so the example counts are small (the
whole file runs in about a minute on two cores); set ``BACKPROP_FUZZ_EXAMPLES=N`` to run
N examples per fuzzer instead, and ``BACKPROP_FUZZ_RANDOM=1`` for new random examples
(the default is derandomised, the same examples on every run, as CI needs).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from backprop import cli  # noqa: E402

SCRIPT = Path(sys.executable).parent / "backprop"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Address space a run may use: a training run peaks near 400 MiB of virtual memory.
MEMORY_LIMIT = 1536 * 2**20
#: A run taking longer than this is a failure (imports take 1-2 s on a busy machine).
SECONDS = 60

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no installed script {SCRIPT}")


def _examples(default: int) -> Callable[[Any], Any]:
    n = int(os.environ.get("BACKPROP_FUZZ_EXAMPLES", default))
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=not os.environ.get("BACKPROP_FUZZ_RANDOM"),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )


# ------------------------------------------------------------------ running a process


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def backprop(root: Path, *argv: str | Path, keep: bool = True) -> tuple[int, str, str]:
    """Run ``backprop ARGV`` in ``root`` under the memory limit; check the common rules.

    A non-zero exit must say one line and no traceback; the run must end within
    `SECONDS`; with ``keep``, every file under ``root`` before the run is there after it
    with the same bytes (new files may appear).
    """
    before = _snapshot(root)
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(SCRIPT), *map(str, argv)],
        capture_output=True,
        text=True,
        errors="replace",
        env=ENV,
        cwd=root,
        preexec_fn=_limit_memory,
        timeout=SECONDS,
    )
    assert time.monotonic() - t0 < SECONDS
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode in (1, 2), (proc.returncode, proc.stderr)
        assert len(lines) == 1 and " error: " in lines[0], proc.stderr
    if keep:
        after = _snapshot(root)
        lost = [name for name, data in before.items() if after.get(name) != data]
        assert not lost, f"changed or removed: {lost}"
    return proc.returncode, proc.stdout, proc.stderr


# ------------------------------------------------------------------ mutations


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 1-3 byte-level edits (flip, overwrite, insert, delete, cut)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["flip", "byte", "insert", "delete", "cut", "dup"]))
        if op == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            out[i] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("9"), ord(","), 10, 0x1B]))
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[i : i + draw(st.integers(1, 16))]
        elif op == "cut":
            del out[i:]
        else:
            out[i:i] = out[i : i + draw(st.integers(1, 64))]
    return bytes(out)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


@st.composite
def mutated_json(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a deep copy) with one to three values replaced or keys removed."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


# ------------------------------------------------------------------ valid inputs


FEATURES = ["a", "b", "c", "d"]
ROWS = 10


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tabular model (4 named features, 3 classes), an image model (4x4 uint8 pixels),
    their inputs in every format, and an interrupted run to resume."""
    from backprop import MLP, Model, save
    from backprop.data import Preprocessor

    root = tmp_path_factory.mktemp("assets")
    rng = np.random.default_rng(0)
    tab = Model(
        MLP([4, 6, 3], dtype=np.float32, seed=1),
        preprocessor=Preprocessor(
            n_features=4, mean=np.full(4, 0.1), scale=np.full(4, 2.0), feature_names=FEATURES
        ),
        classes=np.array([0, 1, 2]),
        config={"seed": 0},
    )
    save(root / "tab.safetensors", tab)
    img = Model(
        MLP([16, 5, 3], dtype=np.float32, seed=2),
        preprocessor=Preprocessor(n_features=16, input_scale=255.0, image_shape=(4, 4)),
        classes=np.array([0, 1, 2]),
    )
    save(root / "img.safetensors", img)
    X = np.round(rng.normal(size=(ROWS, 4)), 4)
    csv_text = ",".join(FEATURES) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in X)
    (root / "x.csv").write_text(csv_text)
    np.save(root / "x.npy", X)
    Xz, yz = rng.normal(size=(40, 4)), np.arange(40) % 3
    np.savez(root / "data.npz", X=Xz, y=yz)
    images = rng.integers(0, 256, size=(ROWS, 4, 4), dtype=np.uint8)
    idx = bytes([0, 0, 8, 3]) + struct.pack(">3I", ROWS, 4, 4) + images.tobytes()
    (root / "images-idx3-ubyte").write_bytes(idx)
    (root / "images-idx3-ubyte.gz").write_bytes(gzip.compress(idx, mtime=0))
    return {"root": root, "tab": tab, "img": img, "X": X, "images": images}


def _work(tmp_path: Path, name: str, data: bytes) -> tuple[Path, Path]:
    """A fresh directory holding ``data`` as ``name`` and a sentinel file."""
    d = tmp_path / f"w{time.monotonic_ns()}"
    d.mkdir()
    (d / "sentinel.txt").write_text("must survive\n")
    (d / name).write_bytes(data)
    return d, d / name


def _predictions(stdout: str) -> np.ndarray:
    lines = stdout.strip().splitlines()
    assert lines[0] == "prediction", stdout[:200]
    return np.array([float(v) for v in lines[1:]])


# ------------------------------------------------------------------ CSV

CELLS = ["nan", "inf", "", "1e999", "0x10", " 3 ", "\x1b[2J", "-", '"1,2"', "\u221e", "9" * 400,
         "1_0", "True", "a"]  # fmt: skip


def _parse_csv(text: str) -> np.ndarray | None:
    """The test's own reading: header a,b,c,d (in any order) then rows of finite floats."""
    import csv

    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or [h.strip() for h in rows[0]] != FEATURES:
        return None
    try:
        values = np.array([[float(c) for c in r] for r in rows[1:]], dtype=np.float64)
    except ValueError:
        return None
    if values.ndim != 2 or values.shape[1] != 4 or not np.all(np.isfinite(values)):
        return None
    return values


@st.composite
def csv_files(draw: st.DrawFn, text: str) -> bytes:
    if draw(st.booleans()):
        return draw(mutated(text.encode()))
    lines = text.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    cells = lines[i].split(",")
    cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(CELLS))
    lines[i] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode("utf-8")


@_examples(8)
@given(data=st.data())
def test_fuzz_csv_to_predict(assets: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    blob = data.draw(csv_files((assets["root"] / "x.csv").read_text()))
    d, path = _work(tmp_path, "x.csv", blob)
    code, out, _ = backprop(d, "predict", assets["root"] / "tab.safetensors", path)
    if code == 0:
        values = _parse_csv(blob.decode("utf-8", errors="replace"))
        assert values is not None, f"accepted a CSV the test cannot read: {blob!r}"
        want = assets["tab"].predict(values)
        np.testing.assert_array_equal(_predictions(out), want)


# ------------------------------------------------------------------ NPY / NPZ


@_examples(6)
@given(data=st.data())
def test_fuzz_npy_to_predict(assets: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    blob = data.draw(mutated((assets["root"] / "x.npy").read_bytes()))
    d, path = _work(tmp_path, "x.npy", blob)
    code, out, _ = backprop(d, "predict", assets["root"] / "tab.safetensors", path)
    if code == 0:
        X = np.load(io.BytesIO(blob), allow_pickle=False)  # the test's own reading
        want = assets["tab"].predict(X.reshape(len(X), -1) if X.ndim > 1 else X.reshape(1, -1))
        np.testing.assert_array_equal(_predictions(out), want)


@_examples(6)
@given(data=st.data())
def test_fuzz_npz_to_evaluate(assets: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    original = (assets["root"] / "data.npz").read_bytes()
    d, path = _work(tmp_path, "data.npz", original)
    code, baseline, err = backprop(d, "evaluate", assets["root"] / "tab.safetensors",
                                   "--data", path)  # fmt: skip
    assert code == 0, err
    blob = data.draw(mutated(original))
    path.write_bytes(blob)
    code, out, _ = backprop(d, "evaluate", assets["root"] / "tab.safetensors", "--data", path)
    if code == 0:
        # The zip's CRCs guard the arrays: an accepted file holds the same ones.
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            same = {k: npz[k] for k in npz.files}
        assert set(same) == {"X", "y"}
        ref = np.load(assets["root"] / "data.npz")
        np.testing.assert_array_equal(same["X"], ref["X"])
        np.testing.assert_array_equal(same["y"], ref["y"])
        assert out == baseline


# ------------------------------------------------------------------ IDX


def _parse_idx(blob: bytes) -> np.ndarray | None:
    """The test's own IDX reading (gzip or raw, uint8 images)."""
    try:
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    except (OSError, EOFError):
        return None
    if len(raw) < 16 or raw[:4] != bytes([0, 0, 8, 3]):
        return None
    n, h, w = struct.unpack(">3I", raw[4:16])
    if len(raw) != 16 + n * h * w:
        return None
    return np.frombuffer(raw[16:], np.uint8).reshape(n, h, w)


@_examples(8)
@given(data=st.data(), compressed=st.booleans())
def test_fuzz_idx_to_predict(
    assets: dict[str, Any], tmp_path: Path, data: st.DataObject, compressed: bool
) -> None:
    name = "images-idx3-ubyte" + (".gz" if compressed else "")
    blob = data.draw(mutated((assets["root"] / name).read_bytes()))
    d, path = _work(tmp_path, name, blob)
    code, out, _ = backprop(d, "predict", assets["root"] / "img.safetensors", path)
    if code == 0:
        images = _parse_idx(blob)
        assert images is not None, f"accepted an IDX file the test cannot read: {blob[:32]!r}"
        np.testing.assert_array_equal(_predictions(out), assets["img"].predict(images))


# ------------------------------------------------------------------ model files


def _model_parts(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from backprop.io import METADATA_KEY

    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()[METADATA_KEY])
    return safetensors.numpy.load_file(path), meta


@st.composite
def model_files(draw: st.DrawFn, path: Path) -> bytes:
    from backprop.io import METADATA_KEY

    if draw(st.booleans()):
        return draw(mutated(path.read_bytes()))
    tensors, meta = _model_parts(path)
    meta = draw(mutated_json(meta))
    return safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(meta)})


@_examples(10)
@given(data=st.data())
def test_fuzz_model_file_to_info_and_predict(
    assets: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    from backprop import load

    blob = data.draw(model_files(assets["root"] / "tab.safetensors"))
    d, path = _work(tmp_path, "model.safetensors", blob)
    code, out, _ = backprop(d, "info", path)
    assert all(ch.isprintable() or ch == "\n" for ch in out), "raw control characters printed"
    code_p, out_p, _ = backprop(d, "predict", path, assets["root"] / "x.npy")
    assert (code == 0) == (code_p == 0), "info and predict disagree about the file"
    if code_p == 0:
        # Accepted: predictions are what the file's numbers give (read in this process).
        np.testing.assert_array_equal(_predictions(out_p), load(path).predict(assets["X"]))


# ------------------------------------------------------------------ checkpoints, run records


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diabetes run interrupted after its first epoch's checkpoint."""
    from backprop import checkpoint

    out = tmp_path_factory.mktemp("interrupted") / "run"
    real, calls = checkpoint.save_checkpoint, []

    def save(path: Path, state: Any, meta: Any = None) -> Path:
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        return real(path, state, meta)

    checkpoint.save_checkpoint = save
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main(["train", "--data", "diabetes", "--hidden", "8", "--epochs", "3",
                             "--quiet", "--out", str(out)])  # fmt: skip
    finally:
        checkpoint.save_checkpoint = real
    assert code == 130
    assert {p.name for p in out.iterdir()} == {"checkpoint.safetensors", "run.json"}
    return out


@st.composite
def damaged_runs(draw: st.DrawFn, run: Path) -> tuple[str, bytes]:
    from backprop.io import METADATA_KEY

    if draw(st.booleans()):
        doc = json.loads((run / "run.json").read_text())
        if draw(st.booleans()):
            return "run.json", draw(mutated(json.dumps(doc).encode()))
        return "run.json", json.dumps(draw(mutated_json(doc))).encode()
    ck = run / "checkpoint.safetensors"
    if draw(st.booleans()):
        return ck.name, draw(mutated(ck.read_bytes()))
    with safetensors.safe_open(str(ck), framework="numpy") as f:
        raw_meta = f.metadata()
    key = METADATA_KEY if METADATA_KEY in raw_meta else next(iter(raw_meta))
    meta = draw(mutated_json(json.loads(raw_meta[key])))
    tensors = safetensors.numpy.load_file(ck)
    return ck.name, safetensors.numpy.save(tensors, metadata={**raw_meta, key: json.dumps(meta)})


@_examples(5)
@given(data=st.data())
def test_fuzz_checkpoint_and_run_record_to_resume(
    interrupted: Path, tmp_path: Path, data: st.DataObject
) -> None:
    name, blob = data.draw(damaged_runs(interrupted))
    d = tmp_path / f"w{time.monotonic_ns()}"
    shutil.copytree(interrupted, d / "run")
    (d / "sentinel.txt").write_text("must survive\n")
    (d / "run" / name).write_bytes(blob)
    before = _snapshot(d)
    code, _, _ = backprop(d, "train", "--resume", d / "run", keep=False)
    after = _snapshot(d)
    if code == 0:
        # Finished: the results published, the checkpoint gone, nothing else touched.
        assert {"run/model.safetensors", "run/metrics.json"} <= set(after)
        assert "run/checkpoint.safetensors" not in after
        assert after["sentinel.txt"] == before["sentinel.txt"]
    else:
        assert after == before, "a refused resume changed the run directory"


# ------------------------------------------------------------------ the explorer's server


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    """A real ``backprop explore`` process under the memory limit: (port, token, its
    stderr's file)."""
    err = tmp_path_factory.mktemp("explore") / "stderr.txt"
    with open(err, "w") as err_file:
        proc = subprocess.Popen(
            [str(SCRIPT), "explore", "--no-browser"], stdout=subprocess.PIPE,
            stderr=err_file, text=True, env=ENV, preexec_fn=_limit_memory,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("serving on ")[1].split()[0]
        port = int(url.split(":")[2].split("/")[0])
        yield port, url.split("token=")[1], err
        assert proc.poll() is None, f"the server died: {err.read_text()}"
    finally:
        proc.terminate()
        proc.wait(10)


def _request(port: int, token: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Backprop-Token: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@_examples(40)
@given(data=st.data())
def test_fuzz_requests_to_explore(explorer: tuple[int, str, Path], data: st.DataObject) -> None:
    # A valid request, then its bytes mutated (head or body, framing included) or its
    # settings replaced by any JSON; each gets a 200 or a refusal, or a closed connection,
    # within seconds, never a 500 or a traceback, and the server lives on.
    port, token, err = explorer
    path = data.draw(st.sampled_from(["/api/reset", "/api/step"]))
    doc: dict[str, Any] = (
        {"config": {"data": "moons", "n": 100, "hidden": [4], "lr": 0.1}}
        if path == "/api/reset"
        else {"steps": 3}
    )
    if data.draw(st.booleans()):
        raw = data.draw(mutated(_request(port, token, path, json.dumps(doc).encode())))
    else:
        raw = _request(port, token, path, json.dumps(data.draw(mutated_json(doc))).encode())
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=SECONDS) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)  # the end of what this client sends: no wait for more
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                reply += chunk
    assert time.monotonic() - t0 < 15, raw[:200]
    if reply.startswith(b"HTTP/"):  # else http.server answered an HTTP/0.9-looking line
        status = int(reply.split(b" ", 2)[1])
        # 501/505: http.server's own refusals of an unknown method or version.
        assert status in (200, 501, 505) or 400 <= status < 500, (raw[:200], reply[:300])
    text = err.read_text()
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
