"""`backprop explore`'s API: every number it shows against the engine and the notes.

Each matrix, chain-rule term and finite difference the page draws comes from these
endpoints; here they are decoded and compared, in float64, with `MLP.loss_and_grads`
and `backprop.notes` (to 1e-12), and the server's refusals are checked.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import backprop
from backprop import notes
from backprop.explore import make_server, server, session
from backprop.explore.server import ExploreServer
from backprop.gradcheck import numerical_gradient

TOL = 1e-12


def decode(enc: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(enc["b64"]), enc["dtype"]).reshape(enc["shape"])


class Client:
    def __init__(self, srv: ExploreServer) -> None:
        self.srv = srv
        self.port = srv.server_address[1]

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = "",
        host: str | None = None, headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Host": host or f"127.0.0.1:{self.port}", **(headers or {})}
        if token is not None:
            h["X-Backprop-Token"] = token or self.srv.token
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        ctype = r.getheader("Content-Type", "")
        return r.status, json.loads(raw) if ctype.startswith("application/json") else raw

    def get(self, path: str) -> Any:
        status, out = self.request("GET", path)
        assert status == 200, out
        return out

    def post(self, path: str, body: Any) -> Any:
        status, out = self.request("POST", path, body)
        assert status == 200, out
        return out


@pytest.fixture
def app() -> Iterator[Client]:
    srv = make_server()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield Client(srv)
    srv.shutdown()
    srv.server_close()


def shown(app: Client, form: str = "rows", example: int = 0) -> dict[str, np.ndarray]:
    res = app.get(f"/api/matrices?form={form}&example={example}")
    return {m["name"]: decode(m["values"]) for m in res["matrices"]}


def close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


# ----------------------------------------------------------------------- the matrices
def test_rows_form_is_page_7_and_the_engine(app: Client) -> None:
    app.post("/api/reset", {"config": {"data": "spiral", "hidden": [7], "batch": 16}})
    app.post("/api/step", {"steps": 5})  # weights away from their initial values
    s = app.srv.session
    X, y = s.batch()
    P_ = s.net.params
    m = shown(app)
    # Page 7 by hand, with the notes' own ReLU: Z = X W + 1_n b, A = ReLU(Z), S = A W2 + 1_n b2.
    n = len(X)
    Z = X @ P_["W1"] + P_["b1"]
    A = notes.relu(Z)
    S = A @ P_["W2"] + P_["b2"]
    P = np.exp(S - S.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    Y = np.eye(3)[y]
    d2 = (P - Y) / n
    dA = d2 @ P_["W2"].T
    for name, want in [
        ("X", X), ("Z(1)", Z), ("A(1)", A), ("S", S), ("P", P), ("Y", Y), ("delta(2)", d2),
        ("dJ/dA(1)", dA), ("f'(Z(1))", notes.relu_prime(Z)), ("delta(1)", dA * (Z > 0)),
    ]:  # fmt: skip
        assert m[name].shape == want.shape, name
        close(m[name], want)
    J, engine = s.net.loss_and_grads(X, y)
    Jn, by_notes = notes.classification_batch_rows(
        X, y, P_["W1"], P_["b1"][None], P_["W2"], P_["b2"][None]
    )
    assert abs(J - Jn) < TOL
    for k in ("W1", "b1", "W2", "b2"):
        name = f"dJ/d{k[0]}({k[1]})"
        close(m[name], engine[k].reshape(m[name].shape))
        close(m[name], by_notes[k])


def test_column_form_is_pages_5_6(app: Client) -> None:
    app.post("/api/reset", {"config": {"data": "blobs", "hidden": [5], "batch": 8}})
    s = app.srv.session
    X, y = s.batch()
    P_ = s.net.params
    cols = shown(app, "columns")
    rows = shown(app, "rows")
    # The notes' column layout: W(l) is fan_out x fan_in, b(l) a column.
    _, g = notes.classification_batch(
        X.T, y, P_["W1"].T, P_["b1"][:, None], P_["W2"].T, P_["b2"][:, None]
    )
    for k in ("W1", "b1", "W2", "b2"):
        close(cols[f"dJ/d{k[0]}({k[1]})"], g[k])
    assert cols["X"].shape == (2, 8) and cols["Z(1)"].shape == (5, 8)
    for name, value in rows.items():
        close(cols[name], value.T)


def test_example_form_is_alg_3(app: Client) -> None:
    app.post("/api/reset", {"config": {"data": "moons", "hidden": [6], "batch": 10}})
    s = app.srv.session
    X, y = s.batch()
    P_ = s.net.params
    k = 4
    ex = shown(app, "example", k)
    _, g = notes.classification_example(
        X[k][:, None], int(y[k]), P_["W1"].T, P_["b1"][:, None], P_["W2"].T, P_["b2"][:, None]
    )
    for key in ("W1", "b1", "W2", "b2"):
        close(ex[f"dJ/d{key[0]}({key[1]})"], g[key])
    # delta(2) of one example is p - e_y, not divided by the batch size (page 4).
    rows = shown(app)
    close(ex["delta(2)"], rows["delta(2)"][k][:, None] * len(X))
    assert ex["X"].shape == (2, 1)


def test_regression_matrices_are_the_notes(app: Client) -> None:
    app.post("/api/reset", {"config": {"data": "surface", "hidden": [6], "batch": 12}})
    s = app.srv.session
    X, y = s.batch()
    P_ = s.net.params
    m = shown(app)
    _, g = notes.regression_batch_rows(X, y, P_["W1"], P_["b1"][None], P_["W2"], P_["b2"][None])
    for k in ("W1", "b1", "W2", "b2"):
        close(m[f"dJ/d{k[0]}({k[1]})"], g[k])
    O = notes.relu(X @ P_["W1"] + P_["b1"]) @ P_["W2"] + P_["b2"]
    close(m["O"], O)
    close(m["delta(2)"], (O - y[:, None]) / len(X))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_deep_network_gradients_are_the_engines(app: Client, activation: str) -> None:
    config = {"data": "xor", "hidden": [5, 4, 3], "activation": activation, "batch": 9}
    app.post("/api/reset", {"config": config})
    s = app.srv.session
    X, y = s.batch()
    m = shown(app)
    _, engine = s.net.loss_and_grads(X, y)
    for l in range(1, 5):
        close(m[f"dJ/dW({l})"], engine[f"W{l}"])
        close(m[f"dJ/db({l})"], engine[f"b{l}"][None])
    Z3 = m["Z(3)"]
    fp = (1 - np.tanh(Z3) ** 2) if activation == "tanh" else m["A(3)"] * (1 - m["A(3)"])
    close(m["f'(Z(3))"], fp)
    close(m["delta(3)"], (m["delta(4)"] @ s.net.params["W4"].T) * fp)


# ------------------------------------------------------------------- the chain rule
def test_chain_rule_of_one_weight(app: Client) -> None:
    config = {"data": "moons", "hidden": [6, 5], "optimizer": "sgd", "lr": 0.1, "batch": 8}
    app.post("/api/reset", {"config": config})
    s = app.srv.session
    X, y = s.batch()
    before = {k: v.copy() for k, v in s.net.params.items()}
    l, i, j, k = 2, 3, 1, 5
    r = app.get(f"/api/chain?layer={l}&i={i}&j={j}&example={k}")
    _, engine = s.net.loss_and_grads(X, y)
    m = shown(app)
    terms = m["A(1)"][:, i] * m["delta(2)"][:, j]
    close(decode(r["terms"]), terms)
    assert abs(r["sum"] - engine["W2"][i, j]) < TOL
    assert abs(r["engine"] - engine["W2"][i, j]) < TOL
    # delta(2)_kj = (sum_m delta(3)_km W(3)_jm) f'(Z(2)_kj)
    dt = decode(r["delta_terms"])
    close(dt, m["delta(3)"][k] * s.net.params["W3"][j])
    assert abs(dt.sum() * r["fprime"] - m["delta(2)"][k, j]) < TOL
    fd = numerical_gradient(lambda: s.net.compute_loss(X, y), s.net.params["W2"])[i, j]
    assert abs(r["finite_difference"] - fd) < TOL
    assert abs(r["finite_difference"] - r["engine"]) < 1e-7
    assert abs(r["next_change"] - (-0.1 * engine["W2"][i, j])) < TOL  # plain SGD: -lr g
    for key, value in before.items():  # looking moves nothing
        assert np.array_equal(s.net.params[key], value)
    step_before = s.net.params["W2"][i, j]
    app.post("/api/step", {"steps": 1})
    assert abs(s.net.params["W2"][i, j] - step_before - r["next_change"]) < TOL


# ------------------------------------------------------------------------ dropout
DROPOUT = {
    "data": "xor", "hidden": [6, 5], "activation": "sigmoid", "optimizer": "sgd", "lr": 0.5,
    "batch": 12, "dropout": 0.4, "input_dropout": 0.25,
}  # fmt: skip


def test_dropout_masks_are_the_next_steps(app: Client) -> None:
    app.post("/api/reset", {"config": DROPOUT})
    app.post("/api/step", {"steps": 3})
    s = app.srv.session
    X, y = s.batch()
    m = shown(app)
    # The masks shown are 0/1, of the batch's shape, and drop some units of each layer.
    masks = [m["M(0)"], m["M(1)"], m["M(2)"]]
    for M, width in zip(masks, (2, 6, 5), strict=True):
        assert M.shape == (12, width) and set(np.unique(M)) == {0.0, 1.0}
    keep = [0.75, 0.6, 0.6]
    scaled = [M / k for M, k in zip(masks, keep, strict=True)]
    # Forward by hand: A(0) = X M(0)/keep, A(l) = sigmoid(Z(l)) M(l)/keep.
    P_ = s.net.params
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    A0 = X * scaled[0]
    Z1 = A0 @ P_["W1"] + P_["b1"]
    A1 = sig(Z1) * scaled[1]
    Z2 = A1 @ P_["W2"] + P_["b2"]
    A2 = sig(Z2) * scaled[2]
    close(m["X"], X)
    for name, want in [("A(0)", A0), ("Z(1)", Z1), ("A(1)", A1), ("Z(2)", Z2), ("A(2)", A2)]:
        close(m[name], want)
    # delta with the same masks: delta(2) = dJ/dA(2) f'(Z(2)) M(2)/keep.
    fp2 = sig(Z2) * (1 - sig(Z2))
    close(m["f'(Z(2))"], fp2)
    close(m["delta(2)"], (m["delta(3)"] @ P_["W3"].T) * fp2 * scaled[2])
    # Every gradient shown is the engine's with these masks (and not without them).
    _, engine = s.net.loss_and_grads(X, y, masks=scaled)
    _, plain = s.net.loss_and_grads(X, y)
    for l in (1, 2, 3):
        close(m[f"dJ/dW({l})"], engine[f"W{l}"])
        close(m[f"dJ/db({l})"], engine[f"b{l}"][None])
    assert np.abs(engine["W1"] - plain["W1"]).max() > 1e-6
    # The next step uses exactly these masks: plain SGD moves W by -lr * that gradient.
    before = {k: v.copy() for k, v in P_.items()}
    app.post("/api/step", {"steps": 1})
    for k, g in engine.items():
        close(s.net.params[k], before[k] - 0.5 * g)


def test_dropout_chain_rule_and_example_form(app: Client) -> None:
    app.post("/api/reset", {"config": DROPOUT})
    s = app.srv.session
    X, y = s.batch()
    m = shown(app)
    scaled = [m["M(0)"] / 0.75, m["M(1)"] / 0.6, m["M(2)"] / 0.6]
    _, engine = s.net.loss_and_grads(X, y, masks=scaled)
    k = int(np.argmax(m["M(1)"][:, 2] == 0))  # an example whose unit 2 of layer 1 is dropped
    r = app.get(f"/api/chain?layer=1&i=1&j=2&example={k}")
    assert abs(r["engine"] - engine["W1"][1, 2]) < TOL
    assert abs(r["sum"] - engine["W1"][1, 2]) < TOL
    assert r["mask"] == 0.0 and r["delta_kj"] == 0.0
    fd = numerical_gradient(
        lambda: s.net.loss_and_grads(X, y, masks=scaled)[0], s.net.params["W1"]
    )[1, 2]
    assert abs(r["finite_difference"] - fd) < TOL
    assert abs(r["next_change"] + 0.5 * engine["W1"][1, 2]) < TOL
    # One example (Alg 3): its own row of each mask.
    ex = shown(app, "example", k)
    close(ex["M(1)"], m["M(1)"][k][:, None])
    _, one = s.net.loss_and_grads(X[k : k + 1], y[k : k + 1], masks=[M[k : k + 1] for M in scaled])
    close(ex["dJ/dW(2)"], one["W2"].T)


def test_dropout_is_bounded(app: Client) -> None:
    for key in ("dropout", "input_dropout"):
        status, out = app.request("POST", "/api/reset", {"config": {key: 0.95}})
        assert status == 400 and f"{key} must be" in out["error"], out


# ---------------------------------------------------------------------- the graph
def test_graph_maps_are_the_engines_activations(app: Client) -> None:
    config = {**DROPOUT, "activation": "tanh", "data": "circles"}
    app.post("/api/reset", {"config": config})
    app.post("/api/step", {"steps": 4})
    s = app.srv.session
    g = app.get("/api/graph?res=9")
    lo, hi = np.array(g["lo"]), np.array(g["hi"])
    # The grid, independently: picture row r is x1 = hi1 - r (hi1 - lo1) / 8, column c is
    # x0 = lo0 + c (hi0 - lo0) / 8.
    r, c = np.mgrid[0:9, 0:9]
    x0 = lo[0] + c * (hi[0] - lo[0]) / 8
    x1 = hi[1] - r * (hi[1] - lo[1]) / 8
    maps = [decode(layer["maps"]) for layer in g["layers"]]
    close(maps[0][0], x0)
    close(maps[0][1], x1)
    # Hidden units: f(Z) of the engine's weights, no dropout (prediction); output: P.
    P_ = s.net.params
    A = np.stack([x0.ravel(), x1.ravel()], axis=1)
    for l in (1, 2):
        A = np.tanh(A @ P_[f"W{l}"] + P_[f"b{l}"])
        assert maps[l].shape == (A.shape[1], 9, 9)
        close(maps[l], A.T.reshape(-1, 9, 9))
    grid = np.stack([x0.ravel(), x1.ravel()], axis=1)
    close(maps[3], s.net.predict_proba(grid).T.reshape(-1, 9, 9))
    # Backward mode: links by dJ/dW and units by delta of the batch, with the next masks.
    X, y = s.batch()
    m = shown(app)
    _, engine = s.net.loss_and_grads(
        X, y, masks=[m["M(0)"] / 0.75, m["M(1)"] / 0.6, m["M(2)"] / 0.6]
    )
    close(decode(g["X"]), X)
    for l in (1, 2, 3):
        layer = g["layers"][l]
        close(decode(layer["W"]), P_[f"W{l}"])
        close(decode(layer["dW"]), engine[f"W{l}"])
        close(decode(layer["delta"]), m[f"delta({l})"])


def test_graph_is_for_small_2d_networks(app: Client) -> None:
    app.post("/api/reset", {"config": {"data": "moons", "hidden": [17]}})
    status, out = app.request("GET", "/api/graph")
    assert status == 400 and "at most 16 units" in out["error"], out
    app.post("/api/reset", {"config": {"data": "digits", "n": 100, "hidden": [4]}})
    status, out = app.request("GET", "/api/graph")
    assert status == 400 and "2-D inputs" in out["error"], out
    status, out = app.request("GET", "/api/graph?res=500")
    assert status == 400 and "res must be" in out["error"], out


# ------------------------------------------------------------------- training, export
def test_200_steps_on_moons_lower_the_loss(app: Client) -> None:
    first = app.post("/api/reset", {"config": {"data": "moons", "noise": 0.2}})
    out = app.post("/api/step", {"steps": 200})
    assert out["step"] == 200
    assert out["history"]["train_loss"][-1] < 0.5 * first["history"]["train_loss"][0]
    assert len(out["grad_norms"]) == 200 and len(out["grad_norms"][0]) == 2  # W(1), W(2)


def test_the_default_is_the_notes_network(app: Client) -> None:
    """One hidden layer (pages 1-7: d -> m -> c), the page's defaults and the server's."""
    assert app.get("/api/options")["defaults"]["hidden"] == [8]
    state = app.post("/api/reset", {"config": {}})
    assert state["layer_sizes"] == [2, 8, 2]
    assert set(app.srv.session.net.params) == {"W1", "b1", "W2", "b2"}


def test_same_config_same_run(app: Client) -> None:
    config = {"data": "spiral", "hidden": [10], "seed": 3}
    a = (app.post("/api/reset", {"config": config}), app.post("/api/step", {"steps": 30}))
    b = (app.post("/api/reset", {"config": config}), app.post("/api/step", {"steps": 30}))
    assert a[1]["history"] == b[1]["history"]


def test_export_is_a_model_file(app: Client, tmp_path: Any) -> None:
    app.post("/api/reset", {"config": {"data": "digits", "n": 300, "hidden": [16]}})
    app.post("/api/step", {"steps": 20})
    path = tmp_path / "m.safetensors"
    path.write_bytes(app.get("/api/export"))
    model = backprop.load(path)
    s = app.srv.session
    X = s.data.X_test
    np.testing.assert_array_equal(model.net.forward(X), s.net.forward(X))
    assert model.image_shape == (8, 8)
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    seq = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    seq = seq.double()
    seq.load_state_dict(load_file(path))
    out = seq(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(out, s.net.forward(X), rtol=1e-12, atol=1e-12)


def test_a_saved_model_is_the_starting_network(app: Client, tmp_path: Any) -> None:
    from backprop.data import Preprocessor
    from backprop.explore import ExploreConfig

    config = {"data": "moons", "hidden": [5, 3], "activation": "tanh", "seed": 4}
    app.post("/api/reset", {"config": config})
    app.post("/api/step", {"steps": 30})
    raw = app.srv.session.data  # the toy set as drawn (no preprocessing)
    trained = {k: v.copy() for k, v in app.srv.session.net.params.items()}
    # A model with a standardising preprocessor: the data reach its net through it.
    model = backprop.Model(
        app.srv.session.net,
        preprocessor=Preprocessor.fit(raw.X_train, standardize=True),
    )
    path = tmp_path / "m.safetensors"
    backprop.save(path, model)
    start = backprop.load(path)
    srv = make_server(
        config=ExploreConfig.from_dict({**config, "init": "model"}, start_model=True),
        start=start,
    )
    try:
        s = srv.session
        assert s.config.hidden == (5, 3) and s.config.activation == "tanh"
        for k, v in trained.items():
            assert np.array_equal(s.net.params[k], v), k
        assert not np.allclose(s.data.X_train, raw.X_train)
        close(s.data.X_train, start.transform(raw.X_train))
        close(s.data.X_test, start.transform(raw.X_test))
        X, y = s.batch()
        m = views_matrices(s)
        _, engine = s.net.loss_and_grads(X, y)
        close(m["dJ/dW(1)"], engine["W1"])
        # A model and data that do not fit: one line naming both.
        with pytest.raises(ValueError, match="takes 2 inputs but data 'digits' has 64"):
            type(s)(
                ExploreConfig.from_dict({"data": "digits", "init": "model"}, start_model=True),
                start=start,
            )
        with pytest.raises(ValueError, match="2 outputs but the data are regression"):
            type(s)(
                ExploreConfig.from_dict({"data": "surface", "init": "model"}, start_model=True),
                start=start,
            )
    finally:
        srv.server_close()
    # Without a model file the page cannot ask for one.
    status, out = app.request("POST", "/api/reset", {"config": {"init": "model"}})
    assert status == 400 and "unknown init" in out["error"], out


def views_matrices(s: Any) -> dict[str, np.ndarray]:
    from backprop.explore import views

    X, y = s.batch()
    res = views.matrices(s.net, X, y, "rows", 0)
    return {m["name"]: decode(m["values"]) for m in res["matrices"]}


def test_cli_model_flag() -> None:
    from backprop.cli import build_parser

    args = build_parser().parse_args(["explore", "--no-browser", "--model", "m.safetensors"])
    assert args.model == "m.safetensors"


# ------------------------------------------------------------------------ security
def test_refuses_without_token_or_with_foreign_host(app: Client) -> None:
    assert app.request("GET", "/api/state", token=None)[0] == 403
    assert app.request("GET", "/api/state", token="x" * 32)[0] == 403
    assert app.request("GET", "/", token=None)[0] == 403
    assert app.request("GET", "/static/app.js", token=None)[0] == 403
    status, out = app.request("GET", "/api/state", host="evil.example:80")
    assert status == 403 and "Host" in out["error"]
    status, out = app.request(
        "POST", "/api/step", {"steps": 1}, headers={"Origin": "http://evil.example"}
    )
    assert status == 403 and "origin" in out["error"]
    assert app.srv.session.steps == 0
    assert app.request("GET", f"/?token={app.srv.token}", token=None)[0] == 200
    assert app.request("GET", "/etc/passwd")[0] == 404
    assert app.request("GET", "/static/../server.py")[0] == 404


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hidden": [2000]}, "hidden width must be a whole number <= 1024"),
        ({"hidden": [4] * 7}, "at most 6 layers"),
        ({"n": 10**6}, "n must be a whole number in [20, 2000]"),
        ({"batch": 100000}, "batch must be a whole number in [1, 512]"),
        ({"data": "/etc/passwd"}, "unknown data"),
        ({"data": "fashion-mnist", "hidden": [1024, 1024, 1024]}, "at most 2000000"),
        ({"colour": 1}, "unknown setting"),
        ({"lr": "1e9"}, "lr must be"),
    ],
)
def test_oversize_or_bad_settings_are_refused(app: Client, config: dict, message: str) -> None:
    if config.get("data") == "fashion-mnist":
        config = {**config, "data": "digits"}  # same rule, no download needed
    status, out = app.request("POST", "/api/reset", {"config": config})
    assert status == 400 and message in out["error"], out


def test_bounded_requests(app: Client) -> None:
    status, out = app.request("POST", "/api/step", {"steps": 5000})
    assert status == 400 and "steps must be a whole number in [1, 1000]" in out["error"]
    status, out = app.request("POST", "/api/reset", {"config": {"x": "a" * 100_000}})
    assert status == 413 and "at most" in out["error"]
    status, out = app.request("GET", "/api/chain?layer=9&i=0&j=0")
    assert status == 400 and "layer" in out["error"]
    status, out = app.request("GET", "/api/matrices?example=999")
    assert status == 400 and "example" in out["error"]


def test_cli_lists_explore() -> None:
    from backprop.cli import build_parser

    args = build_parser().parse_args(["explore", "--no-browser", "--port", "0"])
    assert args.no_browser and args.port == 0


def test_image_view_probabilities_and_input_gradient(app: Client) -> None:
    app.post("/api/reset", {"config": {"data": "digits", "n": 200, "hidden": [12]}})
    app.post("/api/step", {"steps": 3})
    s = app.srv.session
    X, y = s.batch()
    P_ = s.net.params
    k = 2
    r = app.get(f"/api/image?example={k}")
    x = X[k][:, None]
    # Pages 3-4 in column form for one example, then one step further back: dJ/dx = W(1)^T delta(1).
    z = P_["W1"].T @ x + P_["b1"][:, None]
    sc = P_["W2"].T @ notes.relu(z) + P_["b2"][:, None]
    p = np.exp(sc - sc.max())
    p /= p.sum()
    delta1 = (P_["W2"] @ notes.dJ_ds(p, int(y[k]))) * notes.relu_prime(z)
    close(decode(r["out"]), p[:, 0])
    close(decode(r["dX"]), (P_["W1"] @ delta1)[:, 0])
    close(decode(r["x"]), X[k])
    close(decode(r["W1"]), P_["W1"][:, :64].T)
    fd = numerical_gradient(lambda: s.net.compute_loss(x.T, y[k : k + 1]), x[:5])
    np.testing.assert_allclose(decode(r["dX"])[:5], fd[:, 0], atol=1e-7)
    app.post("/api/reset", {"config": {"data": "moons"}})
    status, out = app.request("GET", "/api/image")
    assert status == 400 and "not images" in out["error"]


def test_a_users_csv_is_data_file(tmp_path: Any) -> None:
    from backprop.data import load_dataset

    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    csv = tmp_path / "mine.csv"
    rows = (f"{a},{b},{c}\n" for (a, b), c in zip(X, y, strict=True))
    csv.write_text("a,b,label\n" + "".join(rows))
    srv = make_server(user_data=load_dataset(str(csv), dtype=np.float64))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = Client(srv)
        assert "file" in c.get("/api/options")["data"]
        state = c.post("/api/reset", {"config": {"data": "file", "n": 150, "test": 0.2}})
        assert state["layer_sizes"][0] == 2 and "boundary" in state
        s = srv.session
        assert len(s.data.X_train) + len(s.data.X_test) == 150
        # Its rows are the file's rows through the model's Preprocessor, labels kept.
        T = s.data.pre.transform(X, np.float64)
        for row, label in zip(s.data.X_train, s.data.y_train, strict=True):
            match = np.flatnonzero(np.isclose(T, row, rtol=0, atol=1e-12).all(axis=1))
            assert len(match) == 1 and y[match[0]] == label
        assert s.data.pre.mean is not None  # standardised, fitted on the training part
    finally:
        srv.shutdown()
        srv.server_close()


def test_data_file_needs_a_file(app: Client) -> None:
    status, out = app.request("POST", "/api/reset", {"config": {"data": "file"}})
    assert status == 400 and "unknown data 'file'" in out["error"]


# ------------------------------------------------------------------ hostile clients
# Raw sockets: each request is sent byte for byte as a hostile client would, and the
# reply read until the server closes the connection (or stays silent for `wait` seconds).


def exchange(port: int, data: bytes, wait: float = 3.0) -> tuple[list[int], bool, bytes]:
    """Send ``data`` on a fresh connection: (reply statuses, whether the server closed
    the connection, the bytes received)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.sendall(data)
    buf, closed = b"", False
    try:
        while chunk := s.recv(65536):
            buf += chunk
        closed = True
    except ConnectionResetError:  # closed with our unread bytes in its queue
        closed = True
    except TimeoutError:
        pass
    s.close()
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", buf)], closed, buf


def head(app: Client, method: str, path: str, *lines: str, token: bool = True) -> bytes:
    """A request's head: Host (and the token) first, then ``lines``, then the blank line."""
    h = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{app.port}"]
    h += [f"X-Backprop-Token: {app.srv.token}"] if token else []
    return ("\r\n".join([*h, *lines]) + "\r\n\r\n").encode()


def test_negative_content_length_is_refused_and_closed(app: Client) -> None:
    # Before: read(-1) read the socket to its end, an unbounded buffer.
    statuses, closed, _ = exchange(app.port, head(app, "POST", "/api/step", "Content-Length: -1"))
    assert statuses == [400] and closed


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ((), 411),  # a POST without Content-Length
        (("Content-Length: +5",), 400),
        (("Content-Length: 5", "Content-Length: 0"), 400),  # two lengths: which is true?
        (("Transfer-Encoding: chunked",), 411),
        (("Content-Length: 99999999999999999999999",), 400),
    ],
)
def test_bad_content_length_is_refused_and_closed(
    app: Client, lines: tuple[str, ...], status: int
) -> None:
    statuses, closed, _ = exchange(app.port, head(app, "POST", "/api/step", *lines) + b"{}")
    assert statuses == [status] and closed
    assert app.srv.session.steps == 0


def test_an_oversize_body_is_not_parsed_as_a_second_request(app: Client) -> None:
    # The smuggled request inside the body: before, the 413 kept the connection alive and
    # the body's bytes were read as the next request (a 200).
    smuggled = head(app, "POST", "/api/step", "Content-Length: 13") + b'{"steps": 50}'
    data = head(app, "POST", "/api/reset", "Content-Length: 100000") + smuggled
    statuses, closed, _ = exchange(app.port, data)
    assert statuses == [413] and closed
    assert app.srv.session.steps == 0


def test_a_get_with_a_body_is_refused_and_closed(app: Client) -> None:
    smuggled = head(app, "GET", "/api/state")
    data = head(app, "GET", "/api/state", f"Content-Length: {len(smuggled)}") + smuggled
    statuses, closed, _ = exchange(app.port, data)
    assert statuses == [400] and closed


def test_deep_json_is_refused_before_and_after_the_token(
    app: Client, capfd: pytest.CaptureFixture[str]
) -> None:
    deep = b"[" * 50_000 + b"]" * 10_000  # within MAX_BODY, far beyond the recursion limit
    for token, want in ((False, 403), (True, 400)):
        request = head(app, "POST", "/api/step", f"Content-Length: {len(deep)}", token=token)
        statuses, closed, buf = exchange(app.port, request + deep)
        assert statuses == [want] and closed, buf[:200]
    assert b"nests deeper than" in buf
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/reset", b'{"config": []}', "config must be a JSON object"),
        ("/api/reset", b'{"config": {"lr": 1' + b"0" * 400 + b"}}", "lr must be"),
        ("/api/reset", b'{"config": {"n": 1' + b"0" * 400 + b"}}", "n must be"),
        ("/api/reset", b'{"config": {"noise": 1e999}}', "noise must be"),
        ("/api/reset", b'{"config": {"hidden": [1, "2"]}}', "hidden must be"),
        ("/api/reset", b'{"config": {"seed": 1' + b"0" * 5000 + b"}}", "not JSON"),
        ("/api/step", b'{"steps": 1' + b"0" * 400 + b"}", "steps must be"),
        ("/api/step", b'{"steps": "5"}', "steps must be"),
        ("/api/step", b"[1, 2]", "must be a JSON object"),
    ],
)
def test_settings_of_the_wrong_type_are_one_line_400s(
    app: Client, capfd: pytest.CaptureFixture[str], path: str, body: bytes, message: str
) -> None:
    data = head(app, "POST", path, f"Content-Length: {len(body)}") + body
    statuses, _, buf = exchange(app.port, data)
    assert statuses == [400], buf[:300]
    error = json.loads(buf.split(b"\r\n\r\n", 1)[1])["error"]
    assert message in error and "\n" not in error and len(error) < 300, error
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_does_not_read_blocks_no_one(app: Client) -> None:
    # The largest matrices view of a big network is tens of MB; its client reads nothing.
    # Before, the reply was written while holding the session lock: every other request
    # waited for that client.
    app.post("/api/reset", {"config": {"data": "digits", "hidden": [1024, 1024], "batch": 512}})
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", app.port))
    slow.sendall(head(app, "GET", "/api/matrices?form=rows"))
    time.sleep(1.0)  # the reply is being built (under the lock), then written (not)
    try:
        t0 = time.monotonic()
        status, _ = app.request("GET", "/api/options")
        assert status == 200
        app.post("/api/step", {"steps": 1})  # needs the session's lock
        assert time.monotonic() - t0 < 5.0
    finally:
        slow.close()


def test_unread_replies_hold_bounded_memory(app: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # A large reply nobody reads is held (until the idle timeout); past REPLY_BYTES the
    # next large one is refused instead of held. Small replies (states, steps) still go.
    monkeypatch.setattr(server, "REPLY_BYTES", 2 << 20)
    app.post("/api/reset", {"config": {"data": "digits", "hidden": [1024], "batch": 512}})
    # The reset's own reply leaves the count a moment after the client has read it: wait
    # for that first, or the loop below mistakes its bytes for the large reply's.
    for _ in range(100):
        if not app.srv.pending:
            break
        time.sleep(0.02)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", app.port))
    slow.sendall(head(app, "GET", "/api/matrices?form=rows"))
    try:
        for _ in range(200):  # until the large reply is being written
            if app.srv.pending > server.SMALL_REPLY:
                break
            time.sleep(0.05)
        held = app.srv.pending
        assert held > server.REPLY_BYTES
        status, out = app.request("GET", "/api/matrices?form=columns")
        assert status == 503 and "busy" in out["error"], out
        assert app.request("GET", "/api/state")[0] == 200
        # The small reply's bytes leave the count once its write returns, which may be a
        # moment after the client has read them: wait for that, then nothing else is held.
        for _ in range(100):
            if app.srv.pending == held:
                break
            time.sleep(0.02)
        assert app.srv.pending == held
    finally:
        slow.close()


def test_a_step_request_is_bounded_in_time(app: Client) -> None:
    # The largest step count on a large network: before, minutes under the lock.
    app.post("/api/reset", {"config": {"data": "digits", "hidden": [1024, 1024], "batch": 512}})
    t0 = time.monotonic()
    out = app.post("/api/step", {"steps": 1000})
    took = time.monotonic() - t0
    assert 1 <= out["steps_taken"] < 1000 and out["step"] == out["steps_taken"]
    assert took < server.STEP_SECONDS + 5.0, took


def test_concurrent_resets_load_a_dataset_once(
    app: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = session.load_dataset
    calls = []

    def slow_load(name: str, **kw: Any) -> Any:
        calls.append(name)
        time.sleep(0.5)  # long enough that every request arrives while it loads
        return real(name, **kw)

    monkeypatch.setattr(session, "load_dataset", slow_load)
    session._load_image_set.cache_clear()
    try:
        threads = [
            threading.Thread(target=app.post, args=("/api/reset", {"config": {"data": "digits"}}))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        session._load_image_set.cache_clear()  # not the counting loader's result
    assert calls == ["digits"]
    assert app.srv.session.config.data == "digits"


def test_idle_connections_are_capped_and_dropped(
    app: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server._Handler, "timeout", 1.0)
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", app.port), timeout=5) for _ in range(50)]
    try:
        for s in idle[:3]:
            s.sendall(b"POST /api/step HTTP/1.1\r\n")  # a head never finished
        time.sleep(0.5)
        # Every connect succeeded at once (the backlog), and no more than MAX_CONNECTIONS
        # threads serve them.
        assert threading.active_count() - before <= server.MAX_CONNECTIONS
        time.sleep(1.5)  # past the idle timeout: all dropped
        for s in idle:
            assert s.recv(1) == b""
        assert app.request("GET", "/api/options")[0] == 200
    finally:
        for s in idle:
            s.close()


def test_cli_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    from backprop.cli import main

    assert main(["explore", "--no-browser", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--port" in err and "[0, 65535]" in err, err
    with pytest.raises(ValueError, match="port must be"):
        make_server(port=70000)
