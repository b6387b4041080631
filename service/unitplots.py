"""The units figure as PNG bytes: each unit's activation over the data's range, layer by
layer, and the weights between them as lines (width: size, colour: sign), as TensorFlow
Playground draws a network. plots.py's rules hold: matplotlib imported inside, no pyplot."""

import numpy as np

from .plots import CMAP, COLORS, _bounds, _figure, _png

UNITS_SIZE = (1200, 400)  # the natural size in pixels (the model figure's)
UNITS_GRID = 40  # activations computed per axis of each unit's heat map
MAX_DRAWN = 12  # units drawn per layer; the rest are counted in the column's title
TITLE_PX, GAP = 40, 1.3  # room for the titles; panel pitch as a multiple of its side


def units_png(model, x, width=1200, height=400, title=None):
    """Return the PNG of a network's units: inputs, every hidden layer, and the output."""
    (x1_lo, x2_lo), (x1_hi, x2_hi) = _bounds(x)
    g1, g2 = np.meshgrid(np.linspace(x1_lo, x1_hi, UNITS_GRID),
                         np.linspace(x2_lo, x2_hi, UNITS_GRID))
    grid = np.column_stack([g1.ravel(), g2.ravel()])
    columns = [grid] + model.activations(grid)  # (g*g, units) per layer, the inputs first
    weights = model.to_arrays()[0]
    fig = _figure(width, height, title, UNITS_SIZE, layout=None)
    lines = fig.add_axes((0, 0, 1, 1), zorder=0)
    lines.set_xlim(0, width)
    lines.set_ylim(0, height)
    lines.set_axis_off()
    centres, side = _layout(columns, width, height)
    for i in range(len(columns) - 1):
        _draw_weights(lines, weights[f"W{i}"], centres[i], centres[i + 1], side)
    extent = (x1_lo, x1_hi, x2_lo, x2_hi)
    for c, a in enumerate(columns):
        for unit, (cx, cy) in enumerate(centres[c]):
            ax = fig.add_axes(((cx - side / 2) / width, (cy - side / 2) / height,
                               side / width, side / height), zorder=1)
            ax.imshow(a[:, unit].reshape(g1.shape), origin="lower", extent=extent, cmap=CMAP,
                      interpolation="bilinear", aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
        lines.text(centres[c][0][0], height - TITLE_PX * 0.9, _column_title(c, columns),
                   ha="center", va="top", fontsize="small")
    return _png(fig)


def _layout(columns, width, height):
    """Return ([[(x, y) centre of each drawn unit]] per column, the side of a panel), pixels."""
    drawn = [min(a.shape[1], MAX_DRAWN) for a in columns]
    room = height - 1.5 * TITLE_PX
    side = min(0.45 * width / len(columns), room / (GAP * max(drawn)))
    centres = []
    for c, n in enumerate(drawn):
        x = (c + 0.5) * width / len(columns)
        top = room / 2 + (n - 1) * GAP * side / 2
        centres.append([(x, top - k * GAP * side) for k in range(n)])
    return centres, side


def _draw_weights(ax, W, left, right, side):
    """Draw W (d_in, d_out) as lines from the left units to the right ones: blue positive,
    red negative, wider and darker the larger |w| is in its layer."""
    W = W[:len(left), :len(right)].astype(np.float64)
    biggest = float(np.abs(W).max()) or 1.0
    for i, (x0, y0) in enumerate(left):
        for j, (x1, y1) in enumerate(right):
            size = abs(float(W[i, j])) / biggest
            ax.plot((x0 + side / 2, x1 - side / 2), (y0, y1), color=COLORS[int(W[i, j] > 0)],
                    linewidth=0.3 + 3.5 * size, alpha=0.25 + 0.75 * size,
                    solid_capstyle="butt")


def _column_title(c, columns):
    units = columns[c].shape[1]
    more = f", {units - MAX_DRAWN} not drawn" if units > MAX_DRAWN else ""
    if c == 0:
        return "input: x1, x2"
    if c == len(columns) - 1:
        return "output"
    return f"hidden {c}: {units} units{more}"
