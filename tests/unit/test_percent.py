"""Accuracies are printed truncated, never rounded up to 100%."""

import pytest
from flask import render_template

from service import create_app
from service.percent import percent
from service.settings import Settings


@pytest.mark.parametrize(("fraction", "digits", "shown"), [
    (0.995, 1, "99.5%"), (0.9999, 1, "99.9%"), (0.99999, 2, "99.99%"), (1.0, 1, "100.0%"),
    (0.5, 0, "50%"), (0.0, 1, "0.0%"), (0.2857142857, 2, "28.57%")])
def test_a_percentage_is_cut_not_rounded_up(fraction, digits, shown):
    assert percent(fraction, digits) == shown


@pytest.mark.parametrize(("value", "shown"), [(1e308, "1e+308"), (float("nan"), "nan"),
                                               (-1e307, "-1e+307"), (10**306, "1e+306"),
                                               (10**400, "n/a")])
def test_a_value_no_percentage_holds_is_shown_as_it_is(value, shown):
    assert percent(value, 2) == shown  # a model's page, not a 500 from floor(inf)


def test_the_jobs_table_shows_99_5_not_100(tmp_path):
    app = create_app(Settings(store_dir=tmp_path / "store"))
    job = {"id": "j1", "model": "circle", "status": "succeeded", "error": None,
           "progress": {"epoch": 10, "epochs": 10, "loss": 0.01, "accuracy": 0.995},
           "result": None, "created_at": "2026-12-02T10:00:00Z", "started_at": None,
           "ended_at": None, "kind": "training"}
    try:
        with app.test_request_context():
            html = render_template("jobs.html", jobs=[job], total=1)
    finally:
        app.extensions["nnserve"].stop()
    assert "99.5%" in html and "100%" not in html
