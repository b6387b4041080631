"""Figures and the dashboard: the PNG endpoints, the page, its fragments, its assets, auth."""

import re
from pathlib import Path
from typing import get_args

import pytest

import service
from service.schemas import Activation

from ..unit.test_plots import assert_figure
from .helpers import FAST, assert_problem, train

PNG = "image/png"
ASSETS = Path(service.__file__).parent
TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def model(client):
    """Train 'xor-demo' briefly; return its job."""
    job = train(client, "xor-demo", training=FAST)
    assert job.status == "succeeded", job.error
    return job


def get_png(client, path, headers=None):
    r = client.get(path, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.mimetype == PNG
    return r.data


def test_latest_figure_has_the_default_size(client, model):
    assert_figure(get_png(client, "/v1/models/xor-demo/plot.png"), 1200, 400)


def test_pinned_figure_has_the_asked_size(client, model):
    png = get_png(client, "/v1/models/xor-demo/versions/1/plot.png?width=640&height=480")
    assert_figure(png, 640, 480)


@pytest.mark.parametrize("query, field", [
    ("width=299", "width"), ("width=3001", "width"), ("height=199", "height"),
    ("height=2001", "height"), ("width=wide", "width"), ("dpi=300", "dpi"),
])
def test_sizes_out_of_bounds_are_422(client, model, query, field):
    problem = assert_problem(client.get(f"/v1/models/xor-demo/plot.png?{query}"), 422)
    assert [e["loc"] for e in problem.errors] == [[field]]


@pytest.mark.parametrize("path, status, title", [
    ("/v1/models/nope/plot.png", 404, "Model Not Found"),
    ("/v1/models/xor-demo/versions/9/plot.png", 404, "Model Not Found"),
    ("/v1/models/Bad_Name/plot.png", 422, "Invalid Name"),
    ("/v1/trainings/nope/plot.png", 404, "Job Not Found"),
])
def test_missing_things_are_problems(client, model, path, status, title):
    assert_problem(client.get(path), status, title)


def test_job_figure_draws_the_learning_curve(client, model):
    png = get_png(client, f"/v1/trainings/{model.id}/plot.png?width=600&height=300")
    assert_figure(png, 600, 300)


def test_queued_job_figure_is_drawn_before_any_epoch(make_client):
    client = make_client(run_jobs=False)
    job = train(client, "later", wait=0)
    assert job.status == "queued"
    png = get_png(client, f"/v1/trainings/{job.id}/plot.png?width=600&height=300")
    assert_figure(png, 600, 300)


def test_openapi_documents_the_figures_and_the_page(client):
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/v1/models/{name}/plot.png", "/v1/models/{name}/versions/{version}/plot.png",
                 "/v1/trainings/{job_id}/plot.png"):
        op = paths[path]["get"]
        assert list(op["responses"]["200"]["content"]) == [PNG]
        assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == {"width", "height"}
    page = paths["/"]["get"]
    assert list(page["responses"]["200"]["content"]) == ["text/html"]
    assert "security" not in page


def test_page_is_html_with_the_schemas_choices(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    html = r.get_data(as_text=True)
    for name in get_args(Activation):
        assert f"<option>{name}</option>" in html or f"<option selected>{name}</option>" in html
    assert 'data-auth="off"' in html
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200


def test_assets_are_local_and_keep_no_token_on_disk():
    files = [*ASSETS.glob("templates/*.html"), *ASSETS.glob("static/*")]
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", text), path
        # localStorage keeps the name of the model last used, and nothing else
        uses = re.findall(r"localStorage\.?(\w*)\(?([\w\"']*)", text)
        assert all(use in (("getItem", "MODEL_KEY"), ("setItem", "MODEL_KEY"),
                           ("removeItem", "MODEL_KEY"), ("", "")) for use in uses), (path, uses)
        assert "document.cookie" not in text, path


def test_fragments_show_jobs_and_models(client, model):
    jobs = client.get("/dashboard/jobs?limit=5").get_data(as_text=True)
    assert f'data-job="{model.id}"' in jobs and 'data-status="succeeded"' in jobs
    assert f'<progress max="{FAST["epochs"]}" value="{FAST["epochs"]}">' in jobs
    models = client.get("/dashboard/models").get_data(as_text=True)
    assert 'data-model="xor-demo"' in models
    assert '<img src="/v1/models/xor-demo/versions/1/plot.png"' in models
    past = client.get("/dashboard/jobs?offset=50").get_data(as_text=True)
    assert "No training jobs on this page (1 in all)" in past  # not "No training jobs yet"


def test_fragments_say_when_empty(client):
    assert "No training jobs yet" in client.get("/dashboard/jobs").get_data(as_text=True)
    assert "No models yet" in client.get("/dashboard/models").get_data(as_text=True)


def test_protected_reads_need_the_token_but_the_page_does_not(make_client):
    client = make_client(api_token="s3cret", protect_reads=True)
    page = client.get("/")
    assert page.status_code == 200 and 'data-auth="required"' in page.get_data(as_text=True)
    for path in ("/dashboard/jobs", "/dashboard/models", "/v1/models/m/plot.png",
                 "/v1/trainings/j/plot.png"):
        assert_problem(client.get(path), 401)
    train(client, "m", training=FAST, headers=TOKEN)
    models = client.get("/dashboard/models", headers=TOKEN).get_data(as_text=True)
    assert '<img data-src="/v1/models/m/versions/1/plot.png"' in models  # the script adds the token
    assert_figure(get_png(client, "/v1/models/m/plot.png", TOKEN), 1200, 400)


def test_open_reads_serve_figures_without_the_token(make_client):
    client = make_client(api_token="s3cret")
    train(client, "m", training=FAST, headers=TOKEN)
    models = client.get("/dashboard/models").get_data(as_text=True)
    assert '<img src="/v1/models/m/versions/1/plot.png"' in models
    get_png(client, "/v1/models/m/plot.png")


def test_a_version_figure_is_drawn_once_and_redrawn_for_new_content(client, model, monkeypatch):
    from service import plots

    drawn = []
    real = plots.model_png

    def counting(*args, **kwargs):
        drawn.append(args[-1])  # the title
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "model_png", counting)
    first = get_png(client, "/v1/models/xor-demo/plot.png?width=300&height=200")
    assert get_png(client, "/v1/models/xor-demo/versions/1/plot.png?width=300&height=200") \
        == first
    assert drawn == ["xor-demo version 1"]  # latest and pinned: the same version, drawn once
    get_png(client, "/v1/models/xor-demo/plot.png?width=320&height=200")
    assert len(drawn) == 2  # another size is another figure
    assert client.delete("/v1/models/xor-demo").status_code == 204  # the name goes too
    again = train(client, "xor-demo", training={**FAST, "learning_rate": 0.3})
    assert again.status == "succeeded" and again.result.version == 1  # the number, reused
    assert get_png(client, "/v1/models/xor-demo/plot.png?width=300&height=200") != first
    assert drawn[-1] == "xor-demo version 1" and len(drawn) == 3


def test_the_models_fragment_is_paginated_and_its_figures_load_lazily(client, model):
    """35 models made the fragment reference 35 figures at once (21 s of drawing)."""
    data = client.get("/v1/models/xor-demo/versions/1/npz").data
    for i in range(12):
        r = client.post(f"/v1/models/m{i:02}/versions", data=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201
    first = client.get("/dashboard/models").get_data(as_text=True)
    names = re.findall(r'<article class="model" data-model="([^"]+)"', first)
    assert names == [f"m{i:02}" for i in range(10)]  # 10 a page, by name
    assert first.count('loading="lazy"') == first.count("<img ") == 10
    assert "Models 1–10 of 13" in first and "Previous" not in first
    assert 'data-page="/dashboard/models?limit=10&amp;offset=10"' in first
    last = client.get("/dashboard/models?limit=10&offset=10").get_data(as_text=True)
    assert re.findall(r'data-model="([^"]+)"', last)[::1] == ["m10", "m11", "xor-demo"]
    assert "Models 11–13 of 13" in last and "Next" not in last
    assert 'data-page="/dashboard/models?limit=10&amp;offset=0"' in last
    past = client.get("/dashboard/models?offset=50").get_data(as_text=True)
    assert "No models on this page" in past and "No models yet" not in past
    for query in ("limit=0", "limit=101", "offset=-1", "page=2"):
        assert_problem(client.get(f"/dashboard/models?{query}"), 422)


def test_every_worker_serves_the_figure_kept_beside_the_version(make_client, monkeypatch):
    """Another process (here another app on the same store) reuses the figure one drew: it
    serves the PNG kept beside the version and draws nothing."""
    from service import plots

    one, other = make_client(), make_client(run_jobs=False)
    train(one, "m", training=FAST)
    drawn = get_png(one, "/v1/models/m/plot.png?width=300&height=200")
    monkeypatch.setattr(plots, "model_png", lambda *args, **kwargs: pytest.fail("drawn again"))
    assert get_png(other, "/v1/models/m/versions/1/plot.png?width=300&height=200") == drawn


@pytest.mark.parametrize("corner", [1e6, 999_999.5])
def test_points_at_the_coordinate_limit_are_drawn(client, corner):
    # The figures pad the points' box by 5%; a grid past +-1e6 was refused by the model
    # it asks (a 500 on every figure of the version, its job's and its sweep's).
    dataset = {"kind": "points", "points": [[corner, corner], [-corner, -corner]],
               "labels": [0, 1]}
    job = train(client, "edge", dataset, training={"epochs": 50, "starts": 1})
    assert job.status == "succeeded", job.error
    for path in ("/v1/models/edge/plot.png", "/v1/models/edge/units.png",
                 f"/v1/trainings/{job.id}/boundary.png", f"/v1/trainings/{job.id}/plot.png"):
        get_png(client, path)
