"""python -m benchmarks [--quick] [--only SECTION ...] [--output PATH]: run, print, record."""

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import (
    convergence,
    generalisation,
    hosts,
    jobs,
    machine,
    oip,
    report,
    scaling,
    serving,
    snapshots,
    store,
    sweeps,
    training,
)
from .measure import FULL, QUICK

SECTIONS = {
    "training": training.run,
    "sweeps": sweeps.run,
    "convergence": convergence.run,
    "generalisation": generalisation.run,
    "scaling": scaling.run,
    "store": store.run,
    "snapshots": snapshots.run,
    "serving": serving.run,
    "hosts": hosts.run,
    "jobs": jobs.run,
    "inference": oip.run,
}
RESULTS = Path(__file__).with_name("RESULTS.md")


def run(plan, sections=tuple(SECTIONS), output=None, echo=print):
    """Return the rows of the chosen sections under plan; write them to output when given."""
    started, clock = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), time.monotonic()
    facts = machine.describe()
    rows = []
    for name in sections:
        echo(f"\n== {name} ({plan.name}) ==")
        section_rows = SECTIONS[name](plan)
        echo(report.table(section_rows))
        rows += section_rows
    echo("\n" + report.summary(rows))
    if output is not None:
        load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
        minutes = (time.monotonic() - clock) / 60
        report.write(output, report.markdown(rows, facts, plan, started, minutes, load_after))
        echo(f"wrote {output}")
    return rows


def main(argv=None):
    """Run the benchmarks from the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, epochs and seeds")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), metavar="SECTION",
                        help=f"run only this section (repeatable): {', '.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, help="results file to write (default: "
                        "benchmarks/RESULTS.md for a full run of every section, else none)")
    args = parser.parse_args(argv)
    sections = [name for name in SECTIONS if name in (args.only or SECTIONS)]
    full_run = not args.quick and args.only is None
    output = args.output or (RESULTS if full_run else None)
    run(QUICK if args.quick else FULL, sections, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
