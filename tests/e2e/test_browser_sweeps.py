"""The dashboard's sweeps view in headless Chromium against real gunicorn (2 workers):
the trials table, sorting it, the links to versions, the comparison figure."""

import time

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from .test_browser import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e
WAIT_S = 30
TRIALS = """
const rows = document.querySelectorAll(`[data-sweep="${CSS.escape(arguments[0])}"] tbody tr`);
return Array.from(rows, (r) => r.dataset.trial + ":" + r.cells[r.cells.length - 3].textContent);
"""
FIGURE = """
const img = document.querySelector(`[data-sweep="${CSS.escape(arguments[0])}"] img`);
return img !== null && img.complete && img.naturalWidth > 0;
"""


def test_the_sweeps_view_sorts_trials_links_versions_and_shows_the_figure(start_server,
                                                                          browser):  # noqa: F811
    srv = start_server(workers=2)
    body = {"model": "sw", "base": {"dataset": {"kind": "xor"},
                                    "training": {"epochs": 200, "starts": 1}},
            "grid": {"training.learning_rate": [0.005, 0.3], "network.seed": [0, 1]}}
    sweep_id = requests.post(f"{srv.url}/v1/sweeps", json=body, timeout=10).json()["id"]
    deadline = time.monotonic() + WAIT_S
    while requests.get(f"{srv.url}/v1/sweeps/{sweep_id}", timeout=5).json()["status"] != \
            "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    browser.get(srv.url + "/")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: d.execute_script(FIGURE, sweep_id))
    article = browser.find_element(By.CSS_SELECTOR, f'[data-sweep="{sweep_id}"]')
    headers = [th.text for th in article.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers[:4] == ["trial", "training.learning_rate", "network.seed", "status"]
    loss_column = headers.index("loss")
    article.find_elements(By.CSS_SELECTOR, "thead th")[loss_column].click()
    rows = article.find_elements(By.CSS_SELECTOR, "tbody tr")
    losses = [float(r.find_elements(By.TAG_NAME, "td")[loss_column].text) for r in rows]
    assert losses == sorted(losses) and len(losses) == 4
    article.find_elements(By.CSS_SELECTOR, "thead th")[loss_column].click()  # the other way
    rows = article.find_elements(By.CSS_SELECTOR, "tbody tr")
    again = [float(r.find_elements(By.TAG_NAME, "td")[loss_column].text) for r in rows]
    assert again == sorted(losses, reverse=True)
    links = [a.get_attribute("href") for a in article.find_elements(By.CSS_SELECTOR, "tbody a")]
    assert sorted(link.rsplit("/", 1)[1] for link in links) == ["1", "2", "3", "4"]
    assert requests.get(links[0], timeout=5).json()["sweep"]["id"] == sweep_id
    assert article.find_elements(By.CSS_SELECTOR, "tr.best")
    # the model card: its hyperparameters, and a version deleted from its history
    card = browser.find_element(By.CSS_SELECTOR, '#models [data-model="sw"]')
    assert card.find_element(By.CSS_SELECTOR, ".hp-layers").text == "2-4-4-1"
    card.find_element(By.CSS_SELECTOR, "details.versions summary").click()
    card.find_element(By.CSS_SELECTOR, '[data-delete-version="/v1/models/sw/versions/4"]').click()
    wait.until(lambda d: requests.get(f"{srv.url}/v1/models/sw/versions/4",
                                      timeout=5).status_code == 404)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, '#models [data-version="4"]'))
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
