"""`backprop explore` in a real browser: Debian's Chromium driven by Selenium.

One session walks the page as a user would (load, one step, a click on a weight, 200
steps, the URL in a fresh page, export, a 784-1024-10 network), checks what it shows
against the engine, saves a screenshot of each view and prints the timings the issue asks
for. The screenshots go into docs/images/explore/ (the README's pictures) only with
BACKPROP_SCREENSHOTS=1, so that `make test` leaves the working tree as it was; otherwise
into a temporary directory. Skips when Chromium or Selenium is missing, unless
BACKPROP_REQUIRE_BROWSER is set (as .ci/run does), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backprop
from backprop.explore import make_server
from backprop.explore.server import ExploreServer

DOC_SHOTS = Path(__file__).resolve().parent.parent / "docs" / "images" / "explore"


def _browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or why they are unusable."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        return "Chromium not found (apt-get install chromium chromium-driver)"
    return chromium, driver


_FOUND = _browser()
if isinstance(_FOUND, str):
    if os.environ.get("BACKPROP_REQUIRE_BROWSER"):
        raise RuntimeError(f"BACKPROP_REQUIRE_BROWSER is set but {_FOUND}")
    pytest.skip(_FOUND, allow_module_level=True)


@pytest.fixture(scope="module")
def server() -> Iterator[ExploreServer]:
    srv = make_server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert not isinstance(_FOUND, str)
    chromium, driver_path = _FOUND
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--window-size=1400,1100", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}",
    ):  # fmt: skip
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(driver_path))
    drv.set_script_timeout(60)
    yield drv
    drv.quit()


def wait(drv: Any, js: str, timeout: float = 60) -> Any:
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = drv.execute_script(f"return {js}")
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {js}")


def downloaded(where: Path, pattern: str, timeout: float = 30) -> Path:
    """The one file matching ``pattern`` once Chrome has finished writing it.

    Chrome creates the target name empty when a download starts and writes into
    ``NAME.crdownload`` beside it, renaming at the end: a file that merely exists may
    still be the empty placeholder (a CI run read it at 0 bytes).
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = list(where.glob(pattern))
        busy = list(where.glob("*.crdownload"))
        if len(found) == 1 and not busy and found[0].stat().st_size > 0:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no finished download matching {pattern} in {where}")


def errors(drv: Any) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


SHOTS = DOC_SHOTS if os.environ.get("BACKPROP_SCREENSHOTS") == "1" else None


def shot(drv: Any, element_id: str, name: str, tmp: Path) -> None:
    where = SHOTS or tmp
    where.mkdir(parents=True, exist_ok=True)
    el = drv.find_element("id", element_id)
    drv.execute_script("arguments[0].scrollIntoView()", el)
    el.screenshot(str(where / name))
    assert (where / name).stat().st_size > 0


def shown_step(drv: Any) -> int:
    return int(drv.execute_script("return state ? state.step : -1"))


# Every canvas on the page but the chain view's network diagram is a chart (class "chart"),
# a heatmap or image (class "heatmap"), or both (the graph view). What each shows:
_PICTURES_JS = """
return [...document.querySelectorAll('canvas')]
  .filter((c) => c.offsetParent !== null && c.id !== 'network' && !c.dataset.empty)
  .map((c) => {
    const box = c.closest('.matrix, figure'), scale = box && box.querySelector('.scale');
    const legend = box && box.querySelector('.legend');
    return {
      id: c.id || (box && box.dataset.name) || (c.parentElement && c.parentElement.id) || '?',
      chart: c.classList.contains('chart'), heatmap: c.classList.contains('heatmap'),
      legend: c.dataset.legend || '', legendText: legend ? legend.textContent : null,
      scale: c.dataset.scale || '', scaleText: scale ? scale.textContent : '',
      bar: !!(scale && scale.querySelector('.bar') && scale.offsetParent !== null),
    };
  });
"""


def check_legends_and_scales(drv: Any, min_charts: int, min_maps: int) -> None:
    """Every chart shown has a legend, every heatmap and image shown its colour scale."""
    pictures = drv.execute_script(_PICTURES_JS)
    for p in pictures:
        assert p["chart"] or p["heatmap"], f"{p['id']}: neither a chart nor a heatmap"
        if p["chart"]:
            assert p["legend"], f"chart {p['id']} has no legend"
            if p["legendText"] is not None:  # an HTML legend: it shows every name
                for name in p["legend"].split(", "):
                    assert name in p["legendText"], (p["id"], name)
        if p["heatmap"]:
            assert p["scale"] and p["bar"], f"heatmap {p['id']} has no colour scale"
            lo, hi = p["scale"].split("|")
            assert lo in p["scaleText"] and hi in p["scaleText"], p
    charts = sum(p["chart"] for p in pictures)
    maps = sum(p["heatmap"] for p in pictures)
    assert charts >= min_charts and maps >= min_maps, (charts, maps, [p["id"] for p in pictures])


def test_the_page(server: ExploreServer, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    drv = browser
    timings: dict[str, Any] = {}
    # 1. It loads without a console error and draws the training and matrices views.
    drv.get(server.url)
    wait(drv, "document.body.dataset.ready === '1'")
    assert errors(drv) == []
    first_loss = float(drv.find_element("id", "summary").get_attribute("data-train-loss"))
    shot(drv, "training", "training.png", tmp_path)

    # 2. One step: the page shows step 1 and the server took exactly one.
    drv.find_element("id", "step").click()
    wait(drv, "state.step === 1 && document.querySelectorAll('.matrix').length > 0")
    assert server.session.steps == 1

    # 2b. The graph view draws (forward, then backward), units and links, no error.
    wait(drv, "document.body.dataset.graphDrawn === '1'")
    assert drv.find_element("id", "graph-view").is_displayed()
    painted = (
        "(() => { const c = $('graph'), d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let p = 3; p < d.length; p += 4) n += d[p] > 0; return n; })()"
    )
    # The notes' network by default (one hidden layer): 2 + 8 + 2 units of 44 x 44, links.
    assert server.session.net.layer_sizes == (2, 8, 2)
    assert drv.execute_script(f"return {painted}") > 5000
    shot(drv, "graph-view", "graph-forward.png", tmp_path)
    drv.execute_script("document.body.dataset.graphDrawn = ''")
    drv.execute_script(
        "$('graph-mode').value = 'backward';$('graph-mode').dispatchEvent(new Event('change'))"
    )
    wait(drv, "document.body.dataset.graphDrawn === '1'")
    assert drv.execute_script(f"return {painted}") > 5000
    shot(drv, "graph-view", "graph-backward.png", tmp_path)
    assert errors(drv) == []
    # 2c. Every chart on the page has a legend, every heatmap its colour scale: the
    # boundary, the loss and norm curves, the graph (a key and a scale) and each matrix.
    check_legends_and_scales(drv, min_charts=4, min_maps=10)
    legend = drv.execute_script("return $('boundary').dataset.legend")
    assert "class 1" in legend and "class 2" in legend and "test example" in legend, legend
    key = drv.execute_script("return $('graph').dataset.legend")
    assert "link: dJ/dW(l)_ji > 0" in key, key
    assert "(inputs: x_i over the plane)" in key, key  # no delta for the inputs

    # 3. A click on cell (i, j) of the dJ/dW(2) heatmap shows that weight's chain rule.
    canvas = drv.find_element("css selector", ".matrix[data-name='dJ/dW(2)'] canvas")
    rows, cols = server.session.net.params["W2"].shape
    cell = canvas.size["width"] / cols
    i, j = rows - 2, cols - 1
    dx = (j + 0.5) * cell - canvas.size["width"] / 2
    dy = (i + 0.5) * cell - canvas.size["height"] / 2
    ActionChains(drv).move_to_element_with_offset(canvas, int(dx), int(dy)).click().perform()
    wait(drv, "document.getElementById('chain-engine')")
    X, y = server.session.batch()
    _, grads = server.session.net.loss_and_grads(X, y)
    assert drv.find_element("id", "chain-l").get_attribute("value") == "2"
    assert (drv.execute_script("return [+$('chain-i').value, +$('chain-j').value]")) == [
        i + 1,
        j + 1,
    ]  # shown from 1
    engine = float(drv.find_element("id", "chain-engine").text)
    assert engine == pytest.approx(grads["W2"][i, j], rel=1e-7, abs=1e-12)
    assert float(drv.find_element("id", "chain-fd").text) == pytest.approx(engine, rel=1e-5)
    chain = drv.find_element("id", "chain").text
    assert f"dJ/dW[2]{i + 1},{j + 1}" in chain.replace(" ", "") and "page 7" in chain
    shot(drv, "chain-view", "chain.png", tmp_path)

    # 3b. The notes' notation per form: W[l] and page 7 in rows, W(l) and page 6 in columns.
    def title_and_eq(name: str) -> tuple[str, str]:
        div = drv.find_element("css selector", f".matrix[data-name='{name}']")
        return (
            div.find_element("class name", "title").text,
            div.find_element("class name", "eq").text,
        )

    title, eq = title_and_eq("dJ/dW(1)")
    assert title.startswith("dJ/dW[1]") and eq == "dJ/dW[1] = A[0]^T delta[1] (page 7)", (title, eq)
    assert title_and_eq("X")[1].endswith("(page 6)")
    drv.execute_script("$('form').value = 'columns'; $('form').dispatchEvent(new Event('change'))")
    title_js = "document.querySelector(\".matrix[data-name='dJ/dW(1)'] .title\").textContent"
    wait(drv, f"{title_js}.startsWith('dJ/dW(1)')")
    title, eq = title_and_eq("dJ/dW(1)")
    assert eq == "dJ/dW(1) = delta(1) A(0)^T (page 6)", eq
    drv.execute_script("$('form').value = 'rows'; $('form').dispatchEvent(new Event('change'))")

    # 4. 200 steps of Play lower the shown loss; one step per frame to time it.
    drv.execute_script("$('per-frame').value = '1'; exploreStats.stepMs = []")
    drv.find_element("id", "play").click()
    wait(drv, "state.step >= 201", timeout=120)
    drv.find_element("id", "play").click()
    wait(drv, "!playing && document.getElementById('status').textContent === 'paused'")
    stats = drv.execute_script("return exploreStats")
    timings["step_and_redraw_ms_median"] = statistics.median(stats["stepMs"])
    timings["view_updates_per_s"] = 1000 / statistics.median(stats["frameMs"])
    loss = float(drv.find_element("id", "summary").get_attribute("data-train-loss"))
    assert loss < 0.5 * first_loss
    shot(drv, "training", "training-200-steps.png", tmp_path)
    # The docs' matrices picture: a trained network, in columns (pages 5-6: wide, short
    # matrices) so that the whole backward pass (deltas, dJ/dW, dJ/db) is in view.
    drv.execute_script("$('form').value = 'columns'; $('form').dispatchEvent(new Event('change'))")
    wait(drv, f"{title_js}.startsWith('dJ/dW(1)')")
    shot(drv, "matrices-view", "matrices.png", tmp_path)
    # Read while the columns form is shown: switching form re-renders the matrices.
    scale = drv.find_element("css selector", ".matrix[data-name='dJ/dW(1)'] .scale").text
    assert scale.count("·") == 2 and " 0 " in scale, scale  # every heatmap: its colour scale
    drv.execute_script("$('form').value = 'rows'; $('form').dispatchEvent(new Event('change'))")
    # Every chart has a legend and plain tick numbers (no "1e-0.331" for 10^-0.331).
    legend = drv.execute_script("return [$('curves').dataset.legend, $('norms').dataset.legend]")
    assert legend == ["training loss J, test loss J", "||dJ/dW[1]||, ||dJ/dW[2]||"]
    ticks = drv.execute_script("return $('norms').dataset.ticks").split("|")
    assert all("e" not in t or float(t) < 1e-3 for t in ticks) and float(ticks[0]) > 0, ticks
    assert errors(drv) == []

    # 5. The URL reproduces the state in a fresh page: same step, same loss.
    url = drv.current_url
    summary = drv.find_element("id", "summary").text
    drv.get("about:blank")
    drv.get(url)
    wait(drv, "document.body.dataset.ready === '1'")
    assert drv.find_element("id", "summary").text == summary
    assert shown_step(drv) == server.session.steps

    # 6. Export: a file backprop.load reads, predicting as the server's network does.
    drv.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    drv.find_element("id", "export").click()
    model = backprop.load(downloaded(tmp_path, "*.safetensors"))
    Xt = server.session.data.X_test
    np.testing.assert_array_equal(model.predict(Xt), server.session.net.predict(Xt))

    # 7. The matrices of a 784-1024-10 network on a Fashion-MNIST batch, timed.
    if Path("/usr/share/datasets/fashion-mnist").is_dir():  # .ci/run installs it
        drv.execute_script(
            "fillForm({data: 'fashion-mnist', n: 600, hidden: [1024], batch: 32});"
            "exploreStats.matricesMs = null;"
        )
        drv.find_element("id", "reset").click()
        wait(drv, "exploreStats.matricesMs !== null", timeout=120)
        timings["matrices_784_1024_10_ms"] = drv.execute_script("return exploreStats.matricesMs")
        assert server.session.net.layer_sizes == (784, 1024, 10)
        shot(drv, "matrices-view", "matrices-fashion-mnist.png", tmp_path)
        wait(drv, "document.querySelectorAll('#img-w1 canvas').length === 64")
        # The image view too: x (grey), dJ/dx and the 64 weight images (one shared scale).
        check_legends_and_scales(drv, min_charts=3, min_maps=66)
        assert "0" in drv.find_element("id", "img-dx-scale").text
        shot(drv, "image-view", "image-fashion-mnist.png", tmp_path)
    assert errors(drv) == []
    print("explore timings:", json.dumps(timings))
    assert timings["step_and_redraw_ms_median"] < 1000  # loose: a busy CI machine
