"""The explorer's web server: Python's own `http.server`, JSON endpoints, one session.

Why this server: the maths stays in Python, so the browser only asks for arrays and
draws them. A standard-library `ThreadingHTTPServer` does that with no dependency, no
event loop and nothing to download; "live" training is the page asking for the next few
steps as soon as it has drawn the last ones (one request per frame, no WebSocket needed).

Safe by default: it binds 127.0.0.1; every request must carry the random token of this
run (in the ``X-Backprop-Token`` header, or ``?token=`` for the page itself) and a Host
header naming this server (a DNS-rebinding page cannot reach it); a POST from another
origin is refused; and no request names a file on disk (the static files are a fixed
list). These checks come before any body is read.

Bounded against a hostile client on the same machine: a body needs a ``Content-Length``
of at most `MAX_BODY` (400/411/413 otherwise), JSON at most `MAX_DEPTH` deep, every
setting checked (400 with one line); a refused request closes its connection, so an
unread body is never parsed as a next request. At most `MAX_CONNECTIONS` connections are
served at once, each dropped after `IDLE_TIMEOUT` seconds of silence; replies are built
under the session's lock and written after it, so a client that does not read cannot
hold the others; a step request trains for at most `STEP_SECONDS` (the reply says how
many steps it took); and replies waiting for their readers hold at most `REPLY_BYTES`.

Why `http.server` still: the request line and header parsing it does are bounded (line
length, header count) and well tested; what it lacks is the rules above, a few lines on
top. An ASGI server would add a dependency and an event loop around work that is CPU
bound and synchronous anyway, and the same rules would still be ours to write.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from backprop.checks import check_choice, check_int
from backprop.data import Dataset, load_dataset
from backprop.explore import views
from backprop.explore.session import (
    IMAGE_SETS,
    INITS,
    LIMITS,
    MAX_DROP,
    MAX_PARAMS,
    USER_FILE,
    ExploreConfig,
    Session,
)
from backprop.explore.toys import TOYS
from backprop.io import Model, load, save
from backprop.layers import ACTIVATIONS
from backprop.optim import OPTIMIZERS

__all__ = ["ExploreServer", "make_server", "serve"]

MAX_BODY = 64 * 1024  # bytes of a request body (settings are a few hundred)
MAX_DEPTH = 8  # nesting of a body's JSON (settings are 3 deep: {"config": {"hidden": []}})
# Connections served at once: the page keeps a few (a browser opens at most 6 per host);
# beyond, a new one is closed at once. Each thread holds at most a body and a reply.
MAX_CONNECTIONS = 32
BACKLOG = 64  # connections the kernel queues before accept: above MAX_CONNECTIONS
IDLE_TIMEOUT = 10.0  # seconds a connection may be silent (or not read) before it is closed
STEP_SECONDS = 1.0  # training per step request, at most (then the page asks again)
# Reply bytes held for writing, all connections together: a client that asks for the
# largest matrices view (tens of MB) and never reads holds its reply until IDLE_TIMEOUT;
# beyond this, a large reply is refused with 503 instead of held (the first one and any
# of at most SMALL_REPLY bytes, the page's states and steps, always go out).
REPLY_BYTES = 256 << 20
SMALL_REPLY = 1 << 20
STATIC = {  # the only files served: name -> content type
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
TOKEN_HEADER = "X-Backprop-Token"
GRAPH_RES = (4, 48)  # grid points per side of each unit's picture in the graph view


class RequestError(ValueError):
    """A refused request: an HTTP status and a one-line message."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _static(name: str) -> bytes:
    return resources.files("backprop.explore").joinpath("static", name).read_bytes()


class ExploreServer(ThreadingHTTPServer):
    """The HTTP server holding the one `Session` (and its lock) and the token."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(
        self,
        port: int,
        config: ExploreConfig,
        user_data: Dataset | None = None,
        start: Model | None = None,
    ) -> None:
        check_int("port", port, low=0, high=65535)
        session = Session(config, user_data, start)  # a bad start fails before binding
        super().__init__(("127.0.0.1", port), _Handler)
        self.token = secrets.token_urlsafe(24)
        self.lock = threading.Lock()  # the session: held to change it or to read it
        self.building = threading.Lock()  # one new session built at a time (its memory)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.pending = 0  # reply bytes being written (`REPLY_BYTES`), under pending_lock
        self.pending_lock = threading.Lock()
        self.user_data = user_data
        self.start = start
        self.session = session
        p = self.server_address[1]
        self.hosts = {f"127.0.0.1:{p}", f"localhost:{p}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    @property
    def url(self) -> str:
        """The page's address, token included."""
        return f"http://127.0.0.1:{self.server_address[1]}/?token={self.token}"

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread if one of `MAX_CONNECTIONS` is free, else close it."""
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed: silent when the client left or went quiet, else one
        line (never a traceback on the user's terminal)."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, TimeoutError | ConnectionError):
            print(f"backprop explore: connection failed: {exc!r}", file=sys.stderr, flush=True)


def make_server(
    port: int = 0,
    config: ExploreConfig | None = None,
    user_data: Dataset | None = None,
    start: Model | None = None,
) -> ExploreServer:
    """A ready server on 127.0.0.1 (``port=0``: a free port); call ``serve_forever``.

    ``user_data``: a dataset the page may choose as data "file" (its path stays here);
    ``start``: a saved model the page may start from (``init`` "model").
    """
    return ExploreServer(port, config or ExploreConfig(), user_data, start)


def serve(
    port: int = 0, *, open_browser: bool = True, data: str | None = None, model: str | None = None
) -> None:
    """Run the explorer until Ctrl-C: print its URL and (by default) open the browser.

    Parameters
    ----------
    port : int, default 0
        Port on 127.0.0.1; 0 picks a free one.
    open_browser : bool, default True
    data : str, optional
        The data of the first state: a key of `TOYS` or of `IMAGE_SETS`, or a data file
        or directory that `backprop.data.load_dataset` reads (a CSV with its last column
        the target, .npy, .npz, IDX), offered to the page as data "file".
    model : str, optional
        A model file (`backprop.load`) to start from: its weights, layers and activation,
        its preprocessor applied to the data, and, for a file exported by the explorer,
        its settings (``data`` overrides its data).
    """
    user_data = None
    if data is not None and data not in (*TOYS, *IMAGE_SETS):
        user_data = load_dataset(data, dtype=np.float64)
        data = USER_FILE
    start = None
    values: dict[str, Any] = {}
    if model is not None:
        start = load(model)
        saved = start.config.get("explore")
        known = set(ExploreConfig().to_dict())
        if isinstance(saved, dict):  # a file this app exported: its settings too
            values = {k: v for k, v in saved.items() if k in known}
        values["init"] = "model"
    if data is not None:
        values["data"] = data
    config = ExploreConfig.from_dict(
        values, user_file=user_data is not None, start_model=start is not None
    )
    server = make_server(port, config, user_data, start)
    print(f"backprop explore: serving on {server.url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("backprop explore: stopped", flush=True)
    finally:
        server.server_close()


def _options(srv: ExploreServer) -> dict[str, Any]:
    return {
        "data": [*TOYS, *IMAGE_SETS, *((USER_FILE,) if srv.user_data is not None else ())],
        "activation": list(ACTIVATIONS),
        "init": list(INITS if srv.start is not None else INITS[:1]),
        "optimizer": list(OPTIMIZERS),
        "forms": list(views.FORMS),
        "limits": LIMITS,
        "max_params": MAX_PARAMS,
        "max_drop": MAX_DROP,
        "graph_max_units": views.GRAPH_MAX_UNITS,
        "defaults": ExploreConfig().to_dict(),
    }


def _plane(s: Session) -> tuple[np.ndarray, np.ndarray]:
    """The part of the input plane the pictures show: the data's box and a margin."""
    X = np.vstack([s.data.X_train, s.data.X_test])
    return X.min(axis=0) - 0.3, X.max(axis=0) + 0.3


def _state(s: Session, full: bool) -> dict[str, Any]:
    """What the page redraws after a step; ``full`` adds the data points and structure."""
    d = s.data
    out: dict[str, Any] = {
        "step": s.steps,
        "epoch_size": len(d.X_train),
        "history": s.history,
        "grad_norms": s.grad_norms,
        "metric": s.metric_name,
    }
    if d.X_train.shape[1] == 2:
        out["boundary"] = views.boundary(s.net, *_plane(s), 48)
    if full:
        out |= {
            "config": s.config.to_dict(),
            "layer_sizes": list(s.net.layer_sizes),
            "task": d.task,
            "loss": s.net.loss,
            "image_shape": d.image_shape,
            "batch_size": len(s.batch_index),
        }
        if d.X_train.shape[1] == 2:
            out["points"] = {
                "train": views.encode(d.X_train, "<f4"),
                "train_y": views.encode(d.y_train, "<f4"),
                "test": views.encode(d.X_test, "<f4"),
                "test_y": views.encode(d.y_test, "<f4"),
            }
    return out


def _int_arg(q: dict[str, list[str]], name: str, low: int, high: int) -> int:
    raw = q.get(name, ["0"])[0]
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{name} must be a whole number") from None
    return check_int(name, value, low=low, high=high)


def _json_depth(raw: bytes, limit: int) -> int:
    """How deep ``raw``'s brackets nest, counted up to ``limit + 1`` (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in raw:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif c in b"]}":
            depth -= 1
    return deepest


def _parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, its nesting checked before `json.loads` recurses."""
    if _json_depth(raw, MAX_DEPTH) > MAX_DEPTH:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"request body nests deeper than {MAX_DEPTH}")
    try:
        # ValueError: also an integer beyond Python's digit limit for str -> int.
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise RequestError(HTTPStatus.BAD_REQUEST, "request body is not JSON") from None
    if not isinstance(body, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
    return body


def _line(exc: BaseException, limit: int = 200) -> str:
    """An error as one line of at most ``limit`` characters (a value of 400 digits is cut)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: A reply made under the lock and written after it: status, body, content type, headers.
Reply = tuple[int, bytes, str, dict[str, str]]


def _json_reply(obj: Any, status: int = 200) -> Reply:
    return status, json.dumps(obj).encode(), "application/json", {}


class _Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT  # the socket's: a silent or non-reading client is dropped
    # Headers and body are two writes: with Nagle's algorithm on, the body of a kept-alive
    # connection waits for the client's delayed ACK (about 40 ms a reply).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows the URL, not every poll."""

    # ------------------------------------------------------------------ checks
    def _check(self, query: dict[str, list[str]]) -> None:
        srv = self.server
        if self.headers.get("Host", "") not in srv.hosts:
            raise RequestError(HTTPStatus.FORBIDDEN, "refused: unknown Host header")
        token = self.headers.get(TOKEN_HEADER) or query.get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), srv.token.encode()):
            raise RequestError(HTTPStatus.FORBIDDEN, "refused: missing or wrong token")
        origin = self.headers.get("Origin")
        if self.command == "POST" and origin is not None and origin not in srv.origins:
            raise RequestError(HTTPStatus.FORBIDDEN, f"refused: foreign origin {origin}")

    def _body(self) -> dict[str, Any]:
        """The request's JSON body ({} for a GET), read only within the rules: a POST
        states its length (no chunked bodies), a GET has none."""
        if "Transfer-Encoding" in self.headers:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted")
        if len(self.headers.get_all("Content-Length") or ()) > 1:
            raise RequestError(HTTPStatus.BAD_REQUEST, "more than one Content-Length")
        text = self.headers.get("Content-Length")
        if self.command != "POST":
            if text not in (None, "0"):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"a {self.command} has no body")
            return {}
        if text is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        # Digits only: int() would take "-1", " 7", "+7" and "1_0".
        if not (text.isascii() and text.isdigit()) or len(text) > 12:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {text[:20]!r}")
        length = int(text)
        if length > MAX_BODY:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {length} bytes; at most {MAX_BODY} allowed",
            )
        raw = self.rfile.read(length)
        if len(raw) != length:
            raise RequestError(HTTPStatus.BAD_REQUEST, "request body shorter than Content-Length")
        return _parse_body(raw)

    # ------------------------------------------------------------------ replies
    def _send(self, reply: Reply) -> None:
        srv = self.server
        size = len(reply[1])
        with srv.pending_lock:
            held = size <= SMALL_REPLY or srv.pending == 0 or srv.pending + size <= REPLY_BYTES
            srv.pending += size if held else 0
        if not held:
            busy = f"busy: {srv.pending >> 20} MB of replies wait for their readers; try again"
            self._write(_json_reply({"error": busy}, HTTPStatus.SERVICE_UNAVAILABLE))
            return
        try:
            self._write(reply)
        finally:
            with srv.pending_lock:
                srv.pending -= size

    def _write(self, reply: Reply) -> None:
        status, body, ctype, extra = reply
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in extra.items():
            self.send_header(k, v)
        if status >= 400:
            # A refused request's body may be unread: the connection ends with it, so
            # those bytes are never parsed as a next request.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            self._check(query)  # before reading any body
            body = self._body()
            route = ROUTES.get((self.command, url.path))
            if route is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
            reply = route(self, query, body)
        except RequestError as exc:
            reply = _json_reply({"error": _line(exc)}, exc.status)
        except (ValueError, OverflowError) as exc:  # bad settings, divergence: for the user
            reply = _json_reply({"error": _line(exc)}, HTTPStatus.BAD_REQUEST)
        except (TimeoutError, ConnectionError):
            raise  # the connection itself failed: no reply to write (see handle_error)
        except Exception as exc:  # a bug: one line here and to the page, never a traceback
            line = f"internal error: {type(exc).__name__}: {_line(exc)}"
            print(f"backprop explore: {line}", file=sys.stderr, flush=True)
            reply = _json_reply({"error": line}, HTTPStatus.INTERNAL_SERVER_ERROR)
        self._send(reply)  # after the lock: a client that does not read holds no one

    do_GET = do_POST = _handle

    # ------------------------------------------------------------------ routes
    def page(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        # The page loads its script and style with this run's token (they are refused
        # without it, like every request).
        html = _static("index.html").replace(b"__TOKEN__", self.server.token.encode())
        return 200, html, "text/html; charset=utf-8", {}

    def static(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        name = urlsplit(self.path).path.rsplit("/", 1)[-1]
        return 200, _static(name), STATIC[name], {}

    def options(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        return _json_reply(_options(self.server))

    def state(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        with self.server.lock:
            return _json_reply(_state(self.server.session, full=True))

    def reset(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        srv = self.server
        values = body.get("config", {})
        if not isinstance(values, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "config must be a JSON object")
        config = ExploreConfig.from_dict(
            values, user_file=srv.user_data is not None, start_model=srv.start is not None
        )
        with srv.building:  # built outside the session's lock: steps go on meanwhile
            session = Session(config, srv.user_data, srv.start)
        with srv.lock:
            srv.session = session
            return _json_reply(_state(session, full=True))

    def step(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        with self.server.lock:
            taken = self.server.session.step(body.get("steps", 1), seconds=STEP_SECONDS)
            return _json_reply({**_state(self.server.session, full=False), "steps_taken": taken})

    def matrices(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        form = check_choice("form", q.get("form", ["rows"])[0], views.FORMS)
        with self.server.lock:
            s = self.server.session
            X, y = s.batch()
            k = _int_arg(q, "example", 0, len(X) - 1)
            return _json_reply(views.matrices(s.net, X, y, form, k, s.masks(), s.drop))

    def graph(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        res = _int_arg(q, "res", *GRAPH_RES) if "res" in q else 24
        with self.server.lock:
            s = self.server.session
            X, y = s.batch()
            return _json_reply(views.graph(s.net, X, y, *_plane(s), res, s.masks()))

    def image(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        with self.server.lock:
            s = self.server.session
            if s.data.image_shape is None:
                raise RequestError(HTTPStatus.BAD_REQUEST, "the current data are not images")
            X, y = s.batch()
            k = _int_arg(q, "example", 0, len(X) - 1)
            return _json_reply(views.image_view(s.net, X, y, k))

    def chain(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        with self.server.lock:
            s = self.server.session
            X, y = s.batch()
            sizes = s.net.layer_sizes
            l = _int_arg(q, "layer", 1, s.net.n_layers)
            i = _int_arg(q, "i", 0, sizes[l - 1] - 1)
            j = _int_arg(q, "j", 0, sizes[l] - 1)
            k = _int_arg(q, "example", 0, len(X) - 1)
            return _json_reply(views.chain_rule(s.net, s.optimizer, X, y, l, i, j, k, s.masks()))

    def export(self, q: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        with self.server.lock, tempfile.TemporaryDirectory() as tmp:
            path = save(Path(tmp) / "model.safetensors", self.server.session.model())
            data = path.read_bytes()
            name = f"explore-{self.server.session.config.data}.safetensors"
        disposition = f'attachment; filename="{name}"'
        return 200, data, "application/octet-stream", {"Content-Disposition": disposition}


ROUTES = {
    ("GET", "/"): _Handler.page,
    **{("GET", f"/static/{name}"): _Handler.static for name in STATIC},
    ("GET", "/api/options"): _Handler.options,
    ("GET", "/api/state"): _Handler.state,
    ("POST", "/api/reset"): _Handler.reset,
    ("POST", "/api/step"): _Handler.step,
    ("GET", "/api/matrices"): _Handler.matrices,
    ("GET", "/api/chain"): _Handler.chain,
    ("GET", "/api/graph"): _Handler.graph,
    ("GET", "/api/image"): _Handler.image,
    ("GET", "/api/export"): _Handler.export,
}
