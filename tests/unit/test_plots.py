"""Figures: exact sizes, not blank, errors ringed, safe in threads, matplotlib only on demand."""

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib import image
from matplotlib.figure import Figure

from service import plots
from service.cli import main
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig


def assert_figure(png, width, height):
    """Check that png decodes to width x height pixels that are not blank; return them."""
    pixels = image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (height, width)
    assert pixels.var() > 0
    rgba = np.round(pixels * 255).astype(np.uint32).reshape(-1, pixels.shape[-1])
    colours = np.unique(rgba @ (256 ** np.arange(rgba.shape[1], dtype=np.uint32)))
    assert len(colours) > 50  # the shaded boundary alone has many
    return pixels


@pytest.fixture(scope="module")
def xor_fit():
    """Return (model, x, y, history) of a short XOR run."""
    x, y = datasets.xor()
    model, fit = Model.train(Architecture(), x, y, TrainingConfig(epochs=300, starts=1))
    return model, x, y, fit.history


def test_model_figure_has_the_default_size(xor_fit):
    assert_figure(plots.model_png(*xor_fit), 1200, 400)


@pytest.mark.parametrize("width, height", [(300, 200), (301, 506), (3000, 2000)])
def test_model_figure_has_exactly_the_asked_size(xor_fit, width, height):
    assert_figure(plots.model_png(*xor_fit, width=width, height=height, title="t"), width, height)


def test_misclassified_points_are_counted_and_ringed():
    x, y = datasets.xor()
    labels = y.copy()
    labels[[0, 3]] = 1 - labels[[0, 3]]
    fig = Figure()
    plots.draw_truth_vs_predictions(fig, x, y, labels)
    truth, predictions = fig.axes
    assert truth.get_title() == "Ground truth"
    assert predictions.get_title() == "Predictions (2 wrong)"
    rings = predictions.collections[-1]
    assert rings.get_label() == "wrong"
    np.testing.assert_array_equal(rings.get_offsets(), x[[0, 3]])


@pytest.mark.parametrize("history", [
    {"epoch": [], "loss": [], "accuracy": []},
    {"epoch": [0, 100, 200], "loss": [None, 0.5, 0.25], "accuracy": [None, 0.5, 1.0]},
    {"epoch": [0, 1], "loss": [None, None], "accuracy": [None, None]},
    {"epoch": [0, 1, 2], "loss": [1.0, "x"], "accuracy": 7},  # an uploaded file's odd meta
    {},
    # a diverged job's loss spans 263 decades; an upload's epochs or losses near float's
    # range (matplotlib's locators overflowed: a 500)
    {"epoch": [1, 2, 3], "loss": [8e10, 1e150, 5e273], "accuracy": [0.5, 0.5, 0.5]},
    {"epoch": [1, 10**400], "loss": [1.0, 2.0], "accuracy": [0.5, 0.5]},
    {"epoch": [-1e308, 1e308], "loss": [-1e308, 1e308], "accuracy": [0.5, 0.5]},
])
def test_learning_curve_draws_partial_histories(history):
    png = plots.curve_png(history, width=600, height=300)
    pixels = image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (300, 600)
    assert pixels.var() > 0


def test_learning_curve_draws_the_validation_curves_dashed_when_points_were_held_out():
    x, y = datasets.linear(60, 2)
    fit = Model.train(Architecture(), x, y, TrainingConfig(epochs=200, validation_split=0.25),
                      split_seed=2)[1]
    labels = {}
    for history in (fit.history, {k: v for k, v in fit.history.items() if "validation" not in k}):
        fig = Figure()
        plots._draw_curve(fig.subplots(), history)
        labels[len(history)] = [line.get_label() for ax in fig.axes for line in ax.get_lines()
                                if not line.get_label().startswith(("start", "_"))]
        assert_figure(plots.curve_png(history, width=600, height=300), 600, 300)
    assert sorted(labels.values()) == [["loss", "accuracy"],
                                       ["loss", "validation loss", "accuracy",
                                        "validation accuracy"]]


def test_each_probe_is_its_own_line_and_the_continued_start_is_marked():
    x, y = datasets.xor()
    fit = Model.train(Architecture(), x, y, TrainingConfig(epochs=300, probe_epochs=100))[1]
    fig = Figure()
    plots._draw_curve(fig.subplots(), fit.history)
    lines = fig.axes[0].get_lines()
    probes = [line for line in lines if line.get_label().startswith("start")]
    assert [line.get_label() for line in probes] == [
        f"start {p['start']}" + (" (continued)" if p["continued"] else "")
        for p in fit.history["probes"]]
    for line, probe in zip(probes, fit.history["probes"], strict=True):
        assert list(line.get_xdata()) == probe["epoch"]  # its own curve, not spliced in
    (marker,) = [line for line in lines if line.get_marker() == "o"]
    continued = next(p for p in fit.history["probes"] if p["continued"])
    assert list(marker.get_xdata()) == [continued["epoch"][-1]]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sum("(continued)" in text for text in legend) == 1


def test_threads_draw_the_same_bytes_as_one_thread(xor_fit):
    expected = plots.model_png(*xor_fit, width=600, height=300)
    with ThreadPoolExecutor(4) as pool:
        pngs = list(pool.map(lambda _: plots.model_png(*xor_fit, width=600, height=300), range(4)))
    assert all(png == expected for png in pngs)


def test_train_writes_the_figure(tmp_path, capsys):
    out = tmp_path / "xor.png"
    assert main(["train", "--epochs", "300", "--starts", "1", "--plot", str(out)]) == 0
    assert f"figure written to {out}" in capsys.readouterr().out
    assert_figure(out.read_bytes(), 1200, 400)


STARTUP = """
import sys
from service import create_app
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.settings import Settings
from service.store import FileStore

settings = Settings(store_dir=sys.argv[1], run_jobs=False)
x, y = datasets.xor()
model, fit = Model.train(Architecture(), x, y, TrainingConfig(epochs=100, starts=1))
FileStore(settings.store_dir).save("m", model, dataset={}, metrics={}, history=fit.history,
                                    x=x, y=y)
client = create_app(settings).test_client()
assert client.post("/v1/models/m/predict", json={"x1": 0.1, "x2": 0.9}).status_code == 200
assert client.get("/").status_code == 200
print("matplotlib" in sys.modules)
"""


def test_start_up_and_predictions_do_not_import_matplotlib(tmp_path):
    out = subprocess.run([sys.executable, "-c", STARTUP, str(tmp_path / "store")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
