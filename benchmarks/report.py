"""The table printed on the terminal and the RESULTS.md file written from the same rows."""

import math
import os

KEEP = "<!-- Everything below this line is kept when `make bench` rewrites the file. -->"
COLUMNS = ("measurement", "median", "min-max", "ratio", "target", "verdict")
METHOD = """\
In-process figures (training, convergence, scaling, store) are CPU time of the
benchmark process (`time.process_time`), with NumPy's BLAS held to one thread by
threadpoolctl and PyTorch by `torch.set_num_threads(1)`. The machine has 2 cores and
other work may be running on it (see the load average): wall-clock times swing with that
load, the CPU time of the work measured much less. Every comparison runs its contenders
side by side, repeat by repeat in a rotating order; ratios are of medians from the same
run, except predict/healthz req/s, the median of the ratios within each repeat. HTTP
figures are wall time seen by the client, on loopback, with gunicorn, the load
generator and the client sharing the same 2 cores; "server CPU" is gunicorn's."""


def fmt(value):
    """Return value with about three significant digits."""
    if value is None:
        return "-"
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and
                                  abs(value) >= 10):
        return f"{int(value):,}"
    if not math.isfinite(value):
        return "inf"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    return f"{value:,.{digits}f}"


def cells(row):
    """Return the row's six cells as strings."""
    spread = f"{fmt(row.low)}-{fmt(row.high)}" if row.low is not None else ""
    verdict = row.verdict + (f" ({row.note})" if row.note else "")
    return (row.name, f"{fmt(row.value)} {row.unit}".strip(), spread, row.ratio, row.target,
            verdict)


def table(rows):
    """Return the rows as an aligned plain-text table."""
    lines = [COLUMNS] + [cells(row) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def summary(rows):
    """Return "N of M targets met" and the names of the missed ones."""
    judged = [row for row in rows if row.ok is not None]
    missed = [row for row in judged if not row.ok]
    text = f"{len(judged) - len(missed)} of {len(judged)} targets met"
    return text + "".join(f"\n  MISSED: {r.name}: {r.ratio or f'{fmt(r.value)} {r.unit}'}; "
                          f"target {r.target} ({r.note})" for r in missed)


def markdown(rows, facts, plan, started, minutes, load_after):
    """Return the generated part of RESULTS.md."""
    out = ["# Benchmark results", "",
           f"Written by `python -m benchmarks` (`make bench`), plan `{plan.name}`, on {started}; "
           f"the run took {minutes:.1f} minutes. Rerun to refresh; see the notes at the end for "
           "profiles and the fixes they led to.", "", "## Machine", ""]
    out += [f"- {what}: {value}" for what, value in facts]
    out += [f"- load average at the end: {load_after}", "", "## How it was measured", "",
            METHOD, "", "## Summary", "", "```", summary(rows), "```"]
    for section in dict.fromkeys(row.section for row in rows):
        out += ["", f"## {section.capitalize()}", "", "| " + " | ".join(COLUMNS) + " |",
                "|" + "---|" * len(COLUMNS)]
        for row in rows:
            if row.section == section:
                out.append("| " + " | ".join(c.replace("|", "/") for c in cells(row)) + " |")
    return "\n".join(out) + "\n"


def write(path, generated):
    """Write generated to path, keeping whatever followed the KEEP line in the old file."""
    kept = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if KEEP in old:
            kept = old[old.index(KEEP):]
    with open(path, "w") as f:
        f.write(generated + "\n" + (kept or KEEP + "\n"))
