"""The dashboard's model cards, job rows and sweeps fragment (as HTML from the test client)."""

import re
import time

from .helpers import FAST, train


def test_a_model_card_shows_hyperparameters_metrics_and_versions_with_aliases(client):
    for _ in range(2):
        train(client, "m", training={**FAST, "learning_rate": 0.05, "l2": 0.001})
    client.put("/v1/models/m/aliases/prod", json={"version": 1})
    html = client.get("/dashboard/models").get_data(as_text=True)
    assert '<dd class="hp-layers">2-4-4-1</dd>' in html
    assert '<dd class="hp-lr">0.05</dd>' in html and "<dd>0.001</dd>" in html
    assert "<dt>validation split</dt><dd>0.0</dd>" in html
    rows = re.findall(r'<tr data-version="(\d+)">.*?<td class="aliases">([^<]*)</td>', html, re.S)
    assert rows == [("2", ""), ("1", "prod")]
    assert 'href="/v1/models/m/versions/1/npz" download' in html
    assert 'data-delete-version="/v1/models/m/versions/2"' in html


def test_a_job_row_shows_its_id_start_duration_and_links(client):
    job = train(client, "m", training=FAST)
    html = client.get("/dashboard/jobs").get_data(as_text=True)
    assert f'<td class="job-id" title="{job.id}">{job.id[:8]}</td>' in html
    assert f'<time datetime="{job.started_at}">' in html
    assert re.search(r'<td class="duration">\d+\.\d s</td>', html)
    assert f'href="/v1/trainings/{job.id}/plot.png"' in html
    assert 'href="/v1/models/m/versions/1">v1</a>' in html


def test_the_sweeps_fragment_lists_trials_with_links_and_the_figure(client):
    body = {"model": "sw", "base": {"dataset": {"kind": "xor"},
                                    "training": {"epochs": 30, "starts": 1}},
            "grid": {"network.seed": [0, 1]}}
    sweep_id = client.post("/v1/sweeps", json=body).json["id"]
    deadline = time.monotonic() + 20
    while client.get(f"/v1/sweeps/{sweep_id}").json["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    html = client.get("/dashboard/sweeps").get_data(as_text=True)
    assert f'data-sweep="{sweep_id}"' in html
    assert len(re.findall(r'<tr data-trial="\d"', html)) == 2
    assert 'href="/v1/models/sw/versions/1"' in html and 'href="/v1/models/sw/versions/2"' in html
    assert f'src="/v1/sweeps/{sweep_id}/plot.png"' in html
    assert "No sweeps yet" not in html
    past = client.get("/dashboard/sweeps?offset=5").get_data(as_text=True)
    assert "No sweeps on this page (1 in all)" in past and "No sweeps yet" not in past
