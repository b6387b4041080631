"""The dashboard in real headless Chromium against real gunicorn: train, watch, see, classify.

Needs Debian's chromium and chromium-driver; without them the test fails under CI=true and
is skipped elsewhere. Remake the screenshots of docs/ with
``python -m tests.e2e.test_browser --screenshots docs/``.
"""

import argparse
import base64
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from matplotlib import image
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from .server import Server

pytestmark = pytest.mark.e2e
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1300,1500")
WAIT_S = 30
JOB_ROW = """
const row = document.querySelector(`#jobs tr[data-model="${CSS.escape(arguments[0])}"]`);
if (!row) return null;
const bar = row.querySelector("progress");
return {status: row.dataset.status, epoch: bar.value, epochs: bar.max,
        loss: row.querySelector(".loss").textContent};
"""
FIGURE_LOADED = """
const img = document.querySelector(`[data-model="${CSS.escape(arguments[0])}"] img`);
if (img !== null) img.scrollIntoView();  // figures load lazily, as they come into view
return img !== null && img.complete && img.naturalWidth > 0;
"""
VERDICT = re.compile(r"\((-?\d\.\d\d), (-?\d\.\d\d)\): label ([01]), ")
# The live boundary as shown: its job, epoch and pixels (drawn again as a PNG: the page's
# Content-Security-Policy lets no script fetch its blob: URL).
LIVE_BOUNDARY = """
const img = document.getElementById("live-boundary");
if (!img.complete || !img.naturalWidth || !img.dataset.epoch) return null;
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
canvas.getContext("2d").drawImage(img, 0, 0);
return {job: img.dataset.job, epoch: Number(img.dataset.epoch),
        png: canvas.toDataURL("image/png").split(",")[1]};
"""
FRAGMENTS = """
return performance.getEntriesByType("resource")
  .filter((e) => new URL(e.name).pathname === "/dashboard/jobs").length;
"""
CANVAS_PIXEL = """
const canvas = document.getElementById("canvas");
const [x1lo, x1hi, x2lo, x2hi] = JSON.parse(canvas.dataset.extent);
const plot = JSON.parse(canvas.dataset.plot);
const px = plot.left + (arguments[0] - x1lo) / (x1hi - x1lo) * plot.size;
const py = plot.top + (x2hi - arguments[1]) / (x2hi - x2lo) * plot.size;
return Array.from(canvas.getContext("2d").getImageData(Math.round(px), Math.round(py), 1, 1)
  .data.slice(0, 3));
"""


def chromium_paths():
    """Return (chromium, chromedriver); raise LookupError naming whatever is missing."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver))
               if path is None]
    if missing:
        raise LookupError(f"the browser test needs {' and '.join(missing)}: "
                          "apt-get install -y chromium chromium-driver")
    return chromium, driver


def start_browser(profile):
    """Return a headless Chromium session with a fresh profile and browser logs kept."""
    chromium, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths given: Selenium Manager has nothing to look up or download.
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium; its absence fails under CI=true and skips elsewhere."""
    try:
        chromium_paths()
    except LookupError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    driver = start_browser(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout=WAIT_S):
    """Return condition(driver)'s first truthy value within timeout seconds."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def start_training(driver, model, kind, **fields):
    """Fill in the training form and submit it."""
    form = driver.find_element(By.ID, "train-form")
    Select(form.find_element(By.NAME, "kind")).select_by_value(kind)
    for name, value in {"model": model, **fields}.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def job_row(driver, model, statuses):
    """Return the job row of model once its status is one of statuses."""
    return wait_for(driver, lambda d: (row := d.execute_script(JOB_ROW, model))
                    and row["status"] in statuses and row, timeout=60)


def click_plane(driver, x1, x2):
    """Click the canvas at (x1, x2) of its plane (drawn over its extent inside its axes);
    return (x1, x2, label) shown."""
    canvas = driver.find_element(By.ID, "canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    driver.execute_script("document.getElementById('verdict').textContent = ''")
    x1lo, x1hi, x2lo, x2hi = json.loads(canvas.get_attribute("data-extent"))
    plot = json.loads(canvas.get_attribute("data-plot"))
    scale = canvas.size["width"] / int(canvas.get_attribute("width"))
    px = plot["left"] + (x1 - x1lo) / (x1hi - x1lo) * plot["size"]
    py = plot["top"] + (x2hi - x2) / (x2hi - x2lo) * plot["size"]
    # W3C offsets count from the element's centre; x2 grows upwards
    dx, dy = round(px * scale - canvas.size["width"] / 2), round(py * scale
                                                                 - canvas.size["height"] / 2)
    ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).click().perform()
    shown = wait_for(driver, lambda d: VERDICT.match(d.find_element(By.ID, "verdict").text))
    return float(shown[1]), float(shown[2]), int(shown[3])


def live_boundary(driver, after=-1):
    """Return the live boundary shown ({job, epoch, pixels}) once its epoch is past after."""
    shown = wait_for(driver, lambda d: (b := d.execute_script(LIVE_BOUNDARY))
                     and b["epoch"] > after and b)
    return {**shown, "pixels": image.imread(io.BytesIO(base64.b64decode(shown["png"])),
                                            format="png")}


def watch_live(driver, model):
    """Watch a running job's row and boundary move for a while; return what was seen."""
    first = live_boundary(driver)
    fragments, epoch = driver.execute_script(FRAGMENTS), driver.execute_script(JOB_ROW, model)
    time.sleep(2.5)  # the row moves with the stream; the fragment is not fetched meanwhile
    moved = driver.execute_script(JOB_ROW, model)
    fetched = driver.execute_script(FRAGMENTS) - fragments
    later = live_boundary(driver, first["epoch"])
    return {"first": first, "later": later, "epochs": (epoch["epoch"], moved["epoch"]),
            "fragments": fetched}


def use_dashboard(driver, url):
    """Watch a long job's live boundary and cancel it, train XOR, see its figure, classify
    two points, then come back after another model was trained; return checks."""
    driver.get(f"{url}/")
    driver.execute_script("performance.setResourceTimingBufferSize(100000)")
    wait_for(driver, lambda d: "No training jobs yet" in d.find_element(By.ID, "jobs").text)
    start_training(driver, "slow", "linear", n=2000, epochs=100000)
    running = job_row(driver, "slow", ("running",))
    wait_for(driver, lambda d: 0 < d.execute_script(JOB_ROW, "slow")["epoch"] < running["epochs"])
    live = watch_live(driver, "slow")
    driver.find_element(By.CSS_SELECTOR, "tr[data-model=slow] [data-cancel]").click()
    cancelled = job_row(driver, "slow", ("cancelled", "failed", "succeeded"))
    start_training(driver, "xor-browser", "xor", epochs=5000)
    done = job_row(driver, "xor-browser", ("succeeded", "failed", "cancelled"))
    wait_for(driver, lambda d: d.execute_script(FIGURE_LOADED, "xor-browser"))
    driver.find_element(By.CSS_SELECTOR, "[data-model=xor-browser] [data-classify]").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "canvas").get_attribute("data-ready")
             == "xor-browser")
    clicks = [click_plane(driver, 0.1, 0.9), click_plane(driver, 0.5, 0.5)]
    r = requests.post(f"{url}/v1/trainings", params={"wait": 30}, timeout=40,
                      json={"model": "a-first", "dataset": {"kind": "xor"},
                            "training": {"epochs": 300}})
    assert r.json()["status"] == "succeeded", r.text
    driver.refresh()  # a-first is first in order; the picker keeps the model last used
    wait_for(driver, lambda d: d.execute_script(FIGURE_LOADED, "a-first"))
    picked = wait_for(driver, lambda d: d.find_element(By.ID, "canvas").get_attribute(
        "data-ready"))
    canvas = driver.find_element(By.ID, "canvas")
    seen = {"ticks": json.loads(canvas.get_attribute("data-ticks")),
            "points": int(canvas.get_attribute("data-points")),
            "pixels": {point: driver.execute_script(CANVAS_PIXEL, *point)
                       for point in ((0.0, 0.0), (0.0, 1.0), (0.3, 0.3), (0.9, 0.1))}}
    # a page of one model, a-first: the model last used is on the next page, used by name
    driver.execute_script("document.getElementById('canvas').dataset.ready = ''; "
                          "document.getElementById('models').dataset.src = "
                          "'/dashboard/models?limit=1'; state.model = null; "
                          "return refreshModels();")
    off_page = wait_for(driver, lambda d: d.find_element(By.ID, "canvas").get_attribute(
        "data-ready"))
    shown = [a.get_attribute("data-model") for a in driver.find_elements(
        By.CSS_SELECTOR, "#models article[data-model]")]
    return {**seen, "off_page": (shown, off_page), "running": running, "cancelled": cancelled,
            "done": done, "live": live, "clicks": clicks, "picked": picked}


def test_dashboard_trains_shows_and_classifies(start_server, browser, tmp_path):
    server = start_server(workers=2)
    started = time.monotonic()
    seen = use_dashboard(browser, server.url)
    browser.save_screenshot(str(tmp_path / "dashboard.png"))

    assert seen["running"]["epochs"] == 100000
    live = seen["live"]
    assert live["first"]["job"] == live["later"]["job"]  # the slow job's, moving:
    assert live["first"]["pixels"].shape[:2] == (320, 400)
    title = int(0.12 * 320)  # which names the epoch; below it, the boundary and the points
    changed = np.any(live["first"]["pixels"][title:] != live["later"]["pixels"][title:], axis=-1)
    assert changed.mean() > 0.001
    before, after = live["epochs"]
    # moved by the stream: in 2.5 s at most one fetch of the fragment (every 10 s), not 2-3
    assert after > before and live["fragments"] <= 1
    assert seen["cancelled"]["status"] == "cancelled"
    done = seen["done"]
    assert done["status"] == "succeeded"
    assert done["epoch"] == done["epochs"] > 0
    assert float(done["loss"]) < 0.1
    (x1, x2, corner), (y1, y2, centre) = seen["clicks"]
    assert abs(x1 - 0.1) <= 0.01 and abs(x2 - 0.9) <= 0.01 and corner == 1
    assert abs(y1 - 0.5) <= 0.01 and abs(y2 - 0.5) <= 0.01 and centre == 0
    assert seen["picked"] == "xor-browser"  # remembered, though a-first comes first
    assert seen["off_page"] == (["a-first"], "xor-browser")
    assert {0, 1} <= set(seen["ticks"]["x1"]) and {0, 1} <= set(seen["ticks"]["x2"])
    assert seen["points"] == 21  # XOR's training points, drawn in their class colours:
    pixels = seen["pixels"]
    assert pixels[(0.0, 0.0)] == [214, 39, 40] and pixels[(0.0, 1.0)] == [31, 119, 180]
    assert pixels[(0.3, 0.3)] == [214, 39, 40] and pixels[(0.9, 0.1)] == [31, 119, 180]
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    assert time.monotonic() - started < 60


def whole_page(driver):
    """Return a PNG of the whole page, also below the window's bottom edge."""
    width, height = driver.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight];")
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])


def give_token(driver, token):
    """Type token into the page's token form and submit it."""
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()


def token_message(driver):
    """Return the token form's message while the form shows, else ''."""
    shown = driver.find_element(By.ID, "token-form").is_displayed()
    return driver.find_element(By.ID, "token-message").text if shown else ""


def test_dashboard_asks_for_the_token_and_keeps_it_in_the_tab(start_server, browser,
                                                              tmp_path):
    server = start_server(workers=1, NNSERVE_API_TOKEN="s3cret", NNSERVE_PROTECT_READS="true")
    r = requests.post(f"{server.url}/v1/trainings", params={"wait": 30}, timeout=40,
                      headers={"Authorization": "Bearer s3cret"},
                      json={"model": "m", "dataset": {"kind": "xor"}, "training": {"epochs": 300}})
    assert r.json()["status"] == "succeeded", r.text
    browser.get(f"{server.url}/")
    wait_for(browser, lambda d: "This needs the API token" in token_message(d))
    give_token(browser, "wrong")
    wait_for(browser, lambda d: "refused" in token_message(d))
    give_token(browser, "s3cret")
    wait_for(browser, lambda d: d.execute_script(FIGURE_LOADED, "m"))
    wait_for(browser, lambda d: d.find_element(By.ID, "canvas").get_attribute("data-ready") == "m")

    figure = browser.find_element(By.CSS_SELECTOR, "[data-model=m] img")
    assert figure.get_attribute("src").startswith("blob:")  # fetched with the token
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    kept = browser.execute_script("return [sessionStorage.getItem('nnserve-token'), "
                                  "localStorage.length, document.cookie]")
    assert kept == ["s3cret", 0, ""]

    # A version's Download link sends the token too (a plain link got a 401): the file
    # lands under the server's name with the bytes the API serves.
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(tmp_path)})
    link = browser.find_element(By.CSS_SELECTOR, "[data-model=m] tr[data-version='1'] a[download]")
    browser.execute_script("arguments[0].click()", link)
    wanted = requests.get(f"{server.url}/v1/models/m/versions/1/npz", timeout=10,
                          headers={"Authorization": "Bearer s3cret"})
    assert wanted.status_code == 200
    name = re.search(r'filename="([^"]+)"', wanted.headers["Content-Disposition"])[1]
    wait_for(browser, lambda d: (tmp_path / name).exists())
    assert (tmp_path / name).read_bytes() == wanted.content


def screenshots(out):
    """Write out/dashboard.png (the page after use) and out/figure.png (the XOR model's)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "store", workers=2).start()
        driver = start_browser(Path(tmp) / "chromium-profile")
        try:
            use_dashboard(driver, server.url)
            driver.refresh()  # the first page of models again
            wait_for(driver, lambda d: d.find_element(By.ID, "canvas").get_attribute(
                "data-ready") == "xor-browser")
            (out / "dashboard.png").write_bytes(whole_page(driver))
            figure = requests.get(f"{server.url}/v1/models/xor-browser/plot.png", timeout=30)
            figure.raise_for_status()
            (out / "figure.png").write_bytes(figure.content)
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Remake the dashboard screenshots.")
    parser.add_argument("--screenshots", type=Path, required=True, metavar="DIR")
    screenshots(parser.parse_args().screenshots)
    sys.exit(0)
