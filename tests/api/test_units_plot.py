"""GET /v1/models/{name}[/versions/{version}]/units.png: the network's units, drawn."""

import itertools

import numpy as np
import pytest

from service import unitplots

from ..unit.test_plots import assert_figure
from .helpers import FAST, assert_problem, train
from .test_plots import get_png

HIDDEN = [3, 5]


@pytest.fixture
def model(client):
    job = train(client, "units", network={"hidden": HIDDEN, "activation": "tanh"},
                training=FAST)
    assert job.status == "succeeded", job.error
    return job


def panels(pixels, width, height):
    """Return [[the inner pixels of each unit's panel]] per column, as the figure lays them."""
    columns = [np.zeros((1, n)) for n in (2, *HIDDEN, 1)]
    centres, side = unitplots._layout(columns, width, height)
    inner = int(side * 0.35)
    return [[pixels[int(height - cy) - inner:int(height - cy) + inner,
                    int(cx) - inner:int(cx) + inner] for cx, cy in column]
            for column in centres]


def test_each_unit_is_a_panel_of_its_own_at_the_default_and_a_chosen_size(client, model):
    for path, (width, height) in (("/v1/models/units/units.png", (1200, 400)),
                                  ("/v1/models/units/versions/1/units.png?width=900&height=700",
                                   (900, 700))):
        pixels = assert_figure(get_png(client, path), width, height)
        columns = panels(pixels, width, height)
        assert [len(c) for c in columns] == [2, *HIDDEN, 1]
        hidden = [p for column in columns[1:-1] for p in column]
        for panel in hidden:
            assert panel.var() > 0  # a heat map, not the figure's white background
        for a, b in itertools.combinations(hidden, 2):
            assert not np.array_equal(a, b)  # every unit answers the plane its own way


@pytest.mark.parametrize("path, status", [
    ("/v1/models/nope/units.png", 404), ("/v1/models/units/versions/9/units.png", 404),
    ("/v1/models/Bad_Name/units.png", 422), ("/v1/models/units/units.png?width=299", 422),
    ("/v1/models/units/units.png?height=2001", 422)])
def test_refusals_are_problems(client, model, path, status):
    assert_problem(client.get(path), status)


def test_a_figure_is_drawn_once_per_version_and_size(client, model, monkeypatch):
    drawn, real = [], unitplots.units_png
    monkeypatch.setattr(unitplots, "units_png", lambda *a, **k: drawn.append(a) or real(*a, **k))
    first = get_png(client, "/v1/models/units/units.png?width=300&height=200")
    assert get_png(client, "/v1/models/units/versions/1/units.png?width=300&height=200") == first
    assert len(drawn) == 1
    model_figure = get_png(client, "/v1/models/units/plot.png?width=300&height=200")
    assert model_figure != first and len(drawn) == 1  # the same key of another kind
