"""A sweep's comparison figure as PNG bytes: the learning curves overlaid, coloured by the
parameter that matters most; the metric against each swept parameter; and the decision
boundaries of the best few trials. Drawn as plots.py draws (Agg, one Figure, no pyplot).

A trial here is a dict of GET /v1/sweeps/{id}'s trials (parameters, status, metrics);
curves maps a trial's index to its history, best is [(index, model, x, y)], best first.
"""

import json

import numpy as np

from . import plots

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def sweep_png(trials, curves, best, metric, width=1200, height=400, title=None):
    """Return the PNG of the comparison: curves, metric per parameter, best boundaries."""
    fig = plots._figure(width, height, title, plots.MODEL_SIZE)
    keys = list(trials[0]["parameters"]) if trials else []
    panels = fig.subfigures(1, 3, width_ratios=(1.3, 0.9, 1.8))
    key = most_important(trials, metric, keys)
    _draw_curves(panels[0].subplots(), trials, curves, key)
    _draw_metric(panels[1], trials, metric, keys)
    if best:
        for subfig, (i, model, x, y) in zip(np.atleast_1d(panels[2].subfigures(1, len(best))),
                                             best, strict=True):
            plots._draw_boundary(subfig, model, x, y)
            subfig.axes[0].set_title(f"trial {i}", fontsize="small")
    else:
        ax = panels[2].subplots()
        ax.text(0.5, 0.5, "no trial finished", ha="center", va="center")
        ax.set_axis_off()
    return plots._png(fig)


def most_important(trials, metric, keys):
    """Return the swept key whose values explain most of the metric's spread (the share of
    its variance between the key's groups), the first key on ties or without data."""
    done = [t for t in trials if t["metrics"] and t["metrics"].get(metric) is not None]
    values = np.array([t["metrics"][metric] for t in done], dtype=np.float64)
    if len(values) < 2 or values.var() == 0 or not keys:
        return keys[0] if keys else None
    shares = []
    for key in keys:
        groups = {}
        for t, v in zip(done, values, strict=True):
            groups.setdefault(json.dumps(t["parameters"][key]), []).append(v)
        between = sum(len(g) * (np.mean(g) - values.mean()) ** 2 for g in groups.values())
        shares.append(between / (len(values) * values.var()))
    return keys[int(np.argmax(shares))]


def _draw_curves(ax, trials, curves, key):
    ax.set_title(f"Learning curves by {key}" if key else "Learning curves")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    shown = _labels(trials, key)
    drawn = set()
    for i, history in curves.items():
        epoch, loss = plots._floats(history.get("epoch")), plots._floats(history.get("loss"))
        rows = min(len(epoch), len(loss))
        label = shown[i]
        color = PALETTE[sorted(set(shown)).index(label) % len(PALETTE)]
        ax.plot(epoch[:rows], loss[:rows], color=color, alpha=0.7, linewidth=1.0,
                label=None if label in drawn else label)
        drawn.add(label)
    if drawn:
        ax.set_yscale("log")
        ax.legend(title=key, fontsize="small", title_fontsize="small", loc="upper right")
    else:
        ax.text(0.5, 0.5, "no curves yet", ha="center", va="center", transform=ax.transAxes)


def _draw_metric(subfig, trials, metric, keys):
    axes = np.atleast_1d(subfig.subplots(max(1, len(keys)), 1))
    for ax, key in zip(axes, keys, strict=False):
        labels = _labels(trials, key)
        order = sorted(set(labels), key=labels.index)
        xs, ys = [], []
        for t, label in zip(trials, labels, strict=True):
            if t["metrics"] and t["metrics"].get(metric) is not None:
                xs.append(order.index(label))
                ys.append(t["metrics"][metric])
        ax.scatter(xs, ys, s=18, color="#1f77b4", alpha=0.8)
        ax.set_xticks(range(len(order)), order, fontsize="x-small")
        ax.set_xlabel(key, fontsize="small")
        ax.set_ylabel(metric, fontsize="x-small")
    axes[0].set_title(f"{metric} by parameter")


def _labels(trials, key):
    return [json.dumps(t["parameters"].get(key)) if key else "" for t in trials]
