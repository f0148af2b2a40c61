"""`backprop.exporter`, ``backprop export`` and the skl2onnx converter.

The exported files must run on raw input and give what ``backprop predict`` gives: the
ONNX model (onnxruntime) against ``predict --proba`` (or a regressor's ``predict``), the
folded PyTorch state dict against `Model.forward`, skl2onnx's conversion of an estimator
against its ``predict_proba``/``predict``. Each model here has a non-trivial input
pipeline (digits' /16 and one pixel scale, per-feature standardisation, a standardised
regression target), so leaving the preprocessing or the folding out fails.

onnx, onnxruntime and skl2onnx are the ``export`` extra, part of the ``test`` extra: a
missing one fails here (as scikit-learn would), it does not skip.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skl2onnx
from conftest import require_torch
from sklearn.datasets import load_iris, make_multilabel_classification

import backprop
from backprop import cli
from backprop.data import Dataset, Preprocessor, load_dataset
from backprop.estimators import register_skl2onnx
from backprop.exporter import ONNX_OPSET, ExportError, export, to_onnx, to_torch_state_dict
from backprop.io import Model
from backprop.network import MLP


def run_cli(*argv: object) -> tuple[int, str, str]:
    """``backprop ARGV`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest elementwise relative difference of ``a`` from ``b``."""
    return float(np.max(np.abs(a - b) / np.abs(b)))


def run_onnx(proto: Any, X: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def small_config(**kw: Any) -> backprop.TrainConfig:
    return backprop.TrainConfig(**{"hidden": (16,), "epochs": 3, "batch_size": 32, **kw})


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_model(digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = backprop.train(digits, small_config(), progress=False)
    return backprop.save(tmp_path_factory.mktemp("digits") / "digits.safetensors", model)


def iris_strings() -> Dataset:
    """Iris with its species names as class labels (string labels, per-feature inputs)."""
    data = load_iris()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    X, y = data.data[order] * 10, data.target[order]  # millimetres: scale matters
    return Dataset(
        "iris",
        "classification",
        X[:120],
        y[:120],
        X[120:],
        y[120:],
        classes=np.asarray(data.target_names, dtype=str),
        feature_names=[f"f{j}" for j in range(4)],
    )


def test_onnx_equals_predict_proba_on_raw_digits(digits: Dataset, digits_model: Path) -> None:
    raw = np.asarray(digits.X_test[:200])  # pixels 0..16, as the dataset gives them
    assert raw.max() == 16
    np.save(digits_model.parent / "raw.npy", raw)
    out = digits_model.parent / "proba.npy"
    code, _, err = run_cli(
        "predict", digits_model, digits_model.parent / "raw.npy", "--proba", "-o", out
    )
    assert code == 0, err
    code, printed, err = run_cli("export", digits_model, "--to", "onnx")
    assert code == 0, err
    path = Path(printed.strip())
    assert path == digits_model.with_name("digits.onnx")
    proto = onnx.load(path)
    (got,) = run_onnx(proto, raw.astype(np.float32))
    assert got.dtype == np.float32
    assert max_rel(got, np.load(out)) <= 1e-5
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == list(range(10))
    assert meta["backprop_version"] == backprop.__version__
    assert meta["source_model"] == "digits.safetensors"
    assert proto.opset_import[0].version == ONNX_OPSET
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"  # dynamic batch dimension


def test_onnx_with_string_labels_equals_predict_proba_on_csv(tmp_path: Path) -> None:
    ds = iris_strings()
    model, _ = backprop.train(ds, small_config(epochs=20), progress=False)
    path = backprop.save(tmp_path / "iris.safetensors", model)
    csv = tmp_path / "iris.csv"
    header = ",".join(ds.feature_names or [])
    np.savetxt(csv, ds.X_test, delimiter=",", header=header, comments="", fmt="%.17g")
    code, _, err = run_cli("predict", path, csv, "--proba", "-o", tmp_path / "p.npy")
    assert code == 0, err
    proto = onnx.load(export(path, "onnx"))
    (got,) = run_onnx(proto, np.asarray(ds.X_test, dtype=np.float32))
    assert max_rel(got, np.load(tmp_path / "p.npy")) <= 1e-5
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == ["setosa", "versicolor", "virginica"]
    assert json.loads(meta["feature_names"]) == ds.feature_names


def test_onnx_regressor_gives_the_target_units(tmp_path: Path) -> None:
    ds = load_dataset("diabetes")
    model, _ = backprop.train(ds, small_config(epochs=10), progress=False)
    path = backprop.save(tmp_path / "diabetes.safetensors", model)
    np.save(tmp_path / "raw.npy", ds.X_test)
    code, _, err = run_cli("predict", path, tmp_path / "raw.npy", "-o", tmp_path / "y.npy")
    assert code == 0, err
    (got,) = run_onnx(onnx.load(export(path, "onnx")), np.asarray(ds.X_test, np.float32))
    want = np.load(tmp_path / "y.npy")
    assert got.shape == (len(want), 1)
    assert max_rel(got[:, 0], want) <= 1e-5
    assert want.mean() > 50  # in the target's units (the diabetes progression score)


def binary_model() -> Model:
    """A binary one-output (sigmoid) model with a per-feature pipeline."""
    rng = np.random.default_rng(1)
    X = rng.normal(5, 3, size=(50, 4))
    net = MLP([4, 6, 1], activation="tanh", loss="sigmoid_binary_cross_entropy", seed=1)
    return Model(net, preprocessor=Preprocessor.fit(X), classes=["no", "yes"])


def test_onnx_binary_layout_gives_both_probabilities() -> None:
    model = binary_model()
    X = np.random.default_rng(2).normal(5, 3, size=(20, 4)).astype(np.float32)
    (got,) = run_onnx(to_onnx(model), X)
    assert max_rel(got, model.predict_proba(X)) <= 1e-5


def test_onnx_poisson_model_gives_the_means() -> None:
    """A Poisson model's ONNX output is e^s, the mean its `predict` gives, not the
    log-mean s; the metadata says regression and lists no classes."""
    rng = np.random.default_rng(3)
    X = rng.normal(5, 3, size=(40, 4))
    net = MLP([4, 6, 2], activation="tanh", loss="poisson", seed=1)
    model = Model(net, preprocessor=Preprocessor.fit(X))
    proto = to_onnx(model)
    (got,) = run_onnx(proto, X.astype(np.float32))
    want = model.predict(X)
    assert max_rel(got, want) <= 1e-5
    assert not np.allclose(want, model.forward(X), rtol=0.1)  # the head matters here
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["task"] == "regression" and meta["classes"] == "null"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_folded_torch_module_equals_model_on_raw_input(
    digits: Dataset, digits_model: Path, dtype: type, tmp_path: Path
) -> None:
    torch = require_torch()
    from safetensors.torch import load_file

    trained = backprop.load(digits_model)
    net = MLP(trained.net.layer_sizes, dtype=dtype, seed=3)  # random weights: any W works
    model = Model(net, preprocessor=trained.pre, classes=trained.classes)
    raw = np.asarray(digits.X_test[:100])
    out = export(model, "torch", tmp_path / "m.safetensors")
    d, m, c = net.layer_sizes
    module = torch.nn.Sequential(torch.nn.Linear(d, m), torch.nn.ReLU(), torch.nn.Linear(m, c))
    module = module.to(torch.float64 if dtype == np.float64 else torch.float32)
    module.load_state_dict(load_file(out))  # strict: the names and shapes of nn.Sequential
    with torch.no_grad():
        got = module(torch.from_numpy(raw.astype(dtype))).numpy()
    want = model.forward(raw)
    # Relative to the scores' scale: a score near 0 has no relative precision to keep.
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= tol
    state = to_torch_state_dict(model)
    assert all(np.array_equal(state[k], v.numpy()) for k, v in load_file(out).items())
    # The exported file is also a backprop model file that takes raw input.
    again = backprop.load(out)
    assert again.pre.mean is None and again.pre.image_shape == (8, 8)
    assert np.max(np.abs(again.forward(raw) - want)) / np.max(np.abs(want)) <= tol


def test_export_refuses_to_overwrite_and_unknown_formats(
    digits_model: Path, tmp_path: Path
) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"mine")
    code, _, err = run_cli("export", digits_model, "--to", "onnx", "--out", target)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert target.read_bytes() == b"mine"  # nothing the user had is lost
    code, _, err = run_cli("export", digits_model, "--to", "onnx", "--out", target, "--force")
    assert code == 0, err
    assert onnx.load(target).graph.output[0].name == "probabilities"
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export(digits_model, "tflite")
    assert backprop.export is export


# ------------------------------------------------------------------------- skl2onnx


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    register_skl2onnx()


def fitted(kind: str) -> tuple[Any, np.ndarray]:
    """A small fitted estimator of each kind and its inputs (float64)."""
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=(8,), max_iter=200, random_state=0)
    if kind in ("regressor", "poisson"):
        loss = "poisson" if kind == "poisson" else "squared_error"
        return backprop.MLPRegressor(loss=loss, **params).fit(X[:, :3], X[:, 3]), X[:, :3]
    if kind == "multilabel":
        Xm, Y = make_multilabel_classification(n_samples=60, n_features=5, random_state=0)
        return backprop.MLPClassifier(**params).fit(Xm, Y), Xm
    if kind == "binary":
        y = np.where(y > 0, "plant", "setosa")
    return backprop.MLPClassifier(**params).fit(X, y), X


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regressor", "poisson"])
def test_skl2onnx_converts_each_estimator_kind(kind: str) -> None:
    est, X = fitted(kind)
    options = None if kind in ("regressor", "poisson") else {"zipmap": False}
    out = run_onnx(skl2onnx.to_onnx(est, X[:1], options=options), X)
    if kind == "poisson":  # the Exp head: onnxruntime's exp, not libm's
        np.testing.assert_allclose(out[0][:, 0], est.predict(X), rtol=1e-12, atol=0)
        return
    if kind == "regressor":
        assert np.max(np.abs(out[0][:, 0] - est.predict(X))) <= 1e-12 * np.abs(X).max()
        return
    label, proba = out
    np.testing.assert_array_equal(label, est.predict(X))
    # float64 throughout; onnxruntime's Sigmoid is its own vectorised exp, not libm's.
    np.testing.assert_allclose(proba, est.predict_proba(X), rtol=1e-8, atol=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_skl2onnx_default_zipmap_and_float32() -> None:
    est, X = fitted("multiclass")
    X32 = X.astype(np.float32)
    label, maps = run_onnx(skl2onnx.to_onnx(est, X32[:1]), X32)
    np.testing.assert_array_equal(label, est.predict(X))
    got = np.array([[row[c] for c in est.classes_] for row in maps])
    assert max_rel(got, est.predict_proba(X32)) <= 1e-5
