"""Figures as PNG bytes: ground truth vs predictions, decision boundary, learning curve.

matplotlib is imported inside the drawing functions, so importing nnserve or
serving predictions never loads it. Each call draws its own Figure on the Agg
canvas: no pyplot and no global state, so threads can draw at the same time.
Points are ``x: (n, 2)`` with labels ``y: (n,)``; a history is
``{"epoch": [...], "loss": [...], "accuracy": [...]}`` (None where unknown), with
``validation_loss`` and ``validation_accuracy`` beside them when points were held out.
"""

import io

import numpy as np

from .nn.datasets import MAX_COORDINATE

DPI = 100  # at the natural size or larger; smaller figures get a lower DPI: smaller text
MIN_SCALE = 0.4
MODEL_SIZE = (1200, 400)  # the natural size in pixels of each figure
CURVE_SIZE = (600, 400)
BOUNDARY_SIZE = (500, 400)
GRID = 200  # probabilities computed per axis for the decision boundary
COLORS = ("#d62728", "#1f77b4")  # class 0 red, class 1 blue, as the lab draws them
CMAP = "RdBu"  # probability 0 red ... 1 blue, the same colours as the points
WRONG = "#111111"
PROBE_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")
PAD = 0.05  # margin around the points, as a fraction of their span
DRAWN = 1e100  # a drawn value beyond this is drawn at it (plots._floats)


def model_png(model, x, y, history, width=1200, height=400, title=None):
    """Return the PNG of three panels: truth vs predictions, decision boundary, learning curve."""
    fig = _figure(width, height, title, MODEL_SIZE)
    truth, boundary, curve = fig.subfigures(1, 3, width_ratios=(2, 1.25, 1.25))
    labels = model.predict(x)[1]
    draw_truth_vs_predictions(truth, x, y, labels)
    _draw_boundary(boundary, model, x, y)
    _draw_curve(curve.subplots(), history)
    return _png(fig)


def boundary_png(model, x, y, width=500, height=400, title=None):
    """Return the PNG of one panel: the decision boundary of model, the points on top.

    Laid out by fixed margins, not the constrained layout: half the time of drawing it, for
    a figure drawn again at each report of a running job."""
    fig = _figure(width, height, title, BOUNDARY_SIZE, layout=None)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.86)
    _draw_boundary(fig, model, x, y)
    return _png(fig)


def curve_png(history, width=600, height=400, title=None):
    """Return the PNG of a learning curve: loss and accuracy against epoch."""
    fig = _figure(width, height, title, CURVE_SIZE)
    _draw_curve(fig.subplots(), history)
    return _png(fig)


def _figure(width, height, title, natural, layout="constrained"):
    """Return an empty Figure of width x height pixels; text shrinks below the natural size."""
    from matplotlib.figure import Figure

    dpi = DPI * max(MIN_SCALE, min(1.0, width / natural[0], height / natural[1]))
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout=layout)
    if title:
        fig.suptitle(title)
    return fig


def _png(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def draw_truth_vs_predictions(subfig, x, y, labels):
    """Draw the lab's comparison: ground truth and predictions side by side, errors ringed."""
    truth_ax, pred_ax = subfig.subplots(1, 2, sharex=True, sharey=True)
    wrong = labels != y
    _scatter(truth_ax, x, y, "Ground truth")
    _scatter(pred_ax, x, labels, f"Predictions ({np.count_nonzero(wrong)} wrong)")
    pred_ax.scatter(x[wrong, 0], x[wrong, 1], s=3 * _size(x), facecolors="none",
                    edgecolors=WRONG, linewidths=1.0, label="wrong")
    truth_ax.legend(loc="best", fontsize="small")
    if wrong.any():
        pred_ax.legend(loc="best", fontsize="small")


def _draw_boundary(subfig, model, x, y):
    """Draw P(class 1) over the plane, its 0.5 contour, and the points on top."""
    ax = subfig.subplots()
    (x1_lo, x2_lo), (x1_hi, x2_hi) = _bounds(x)
    g1, g2 = np.meshgrid(np.linspace(x1_lo, x1_hi, GRID), np.linspace(x2_lo, x2_hi, GRID))
    p = model.predict_proba(np.column_stack([g1.ravel(), g2.ravel()])).reshape(g1.shape)
    image = ax.imshow(p, origin="lower", extent=(x1_lo, x1_hi, x2_lo, x2_hi), cmap=CMAP,
                      vmin=0.0, vmax=1.0, alpha=0.7, interpolation="bilinear")
    if p.min() < 0.5 < p.max():  # a constant model has no boundary to draw
        ax.contour(g1, g2, p, levels=[0.5], colors=WRONG, linewidths=1.5)
    _scatter(ax, x, y, "Decision boundary")
    subfig.colorbar(image, ax=ax, label="P(class 1)", shrink=0.8)


def _draw_curve(ax, history):
    """Draw loss (log scale when positive) and accuracy (right axis) against epoch, and the
    validation set's, dashed, when the history has them."""
    ax.set_title("Learning curve")
    ax.set_xlabel("epoch")
    keys = ("epoch", "loss", "accuracy", "validation_loss", "validation_accuracy")
    epoch, loss, acc, val_loss, val_acc = (_floats(history.get(key)) for key in keys)
    rows = min(len(epoch), len(loss), len(acc))  # an uploaded file's history may disagree
    epoch, loss, acc = epoch[:rows], loss[:rows], acc[:rows]
    if rows == 0:
        ax.text(0.5, 0.5, "no epochs yet", ha="center", va="center", transform=ax.transAxes)
        return
    held_out = len(val_loss) == len(val_acc) == rows
    lines = _draw_probes(ax, history.get("probes"))
    lines += ax.plot(epoch, loss, color="#444444", label="loss")
    if held_out:
        lines += ax.plot(epoch, val_loss, color="#444444", linestyle="--",
                         label="validation loss")
    ax.set_ylabel("loss")
    both = np.concatenate([loss, val_loss if held_out else []])
    finite = both[np.isfinite(both)]
    if finite.size and finite.min() > 0:
        ax.set_yscale("log")
    acc_ax = ax.twinx()
    lines += acc_ax.plot(epoch, acc, color="#2ca02c", label="accuracy")
    if held_out:
        lines += acc_ax.plot(epoch, val_acc, color="#2ca02c", linestyle="--",
                             label="validation accuracy")
    acc_ax.set_ylim(0.0, 1.05)
    acc_ax.set_ylabel("accuracy")
    ax.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize="small")


def _draw_probes(ax, probes):
    """Draw each multi-start probe's loss as its own thin line, the start that continued
    marked where its probing ended (it goes on as the main curve); return the legend's."""
    lines = []
    for probe in probes if isinstance(probes, list) else []:
        if not isinstance(probe, dict):
            continue
        epoch, loss = _floats(probe.get("epoch")), _floats(probe.get("loss"))
        rows = min(len(epoch), len(loss))
        if rows == 0:
            continue
        continued = probe.get("continued") is True
        (line,) = ax.plot(epoch[:rows], loss[:rows], linewidth=0.8, alpha=0.6,
                          color=PROBE_COLORS[len(lines) % len(PROBE_COLORS)],
                          label=f"start {probe.get('start')}" + (" (continued)" if continued
                                                                else ""))
        if continued:
            ax.plot(epoch[rows - 1], loss[rows - 1], marker="o", color=line.get_color())
        lines.append(line)
    return lines


def _scatter(ax, x, labels, title):
    """Draw the points of x coloured by their 0/1 labels, on square axes bounding them."""
    for label, color in enumerate(COLORS):
        rows = labels == label
        ax.scatter(x[rows, 0], x[rows, 1], s=_size(x), c=color, edgecolors="white",
                   linewidths=0.5 if len(x) <= 200 else 0.0, label=f"class {label}")
    (x1_lo, x2_lo), (x1_hi, x2_hi) = _bounds(x)
    ax.set_xlim(x1_lo, x1_hi)
    ax.set_ylim(x2_lo, x2_hi)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def _bounds(x):
    """Return (low, high) corners of a box holding the unit square and every point, padded,
    within the coordinates a model can be asked about (its grid is predicted)."""
    low = np.minimum(x.min(axis=0), 0.0)
    high = np.maximum(x.max(axis=0), 1.0)
    pad = PAD * (high - low)
    return np.maximum(low - pad, -MAX_COORDINATE), np.minimum(high + pad, MAX_COORDINATE)


def _size(x):
    """Return a marker area that keeps 21 points readable and 10,000 points apart."""
    return float(np.clip(2000.0 / len(x), 4.0, 40.0))


def _floats(values):
    """Return a list's numbers as a float array, NaN for anything else (None while unknown),
    each within +-DRAWN: matplotlib's locators overflow on a span near float's range (a
    diverged job's loss of 1e273 on a log axis, an uploaded epoch of 10**400)."""
    values = values if isinstance(values, list) else []
    numbers = [min(max(v, -DRAWN), DRAWN) if isinstance(v, int | float)
               and not isinstance(v, bool) else np.nan for v in values]
    return np.array(numbers, dtype=np.float64)
