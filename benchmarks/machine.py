"""What the benchmarks ran on: CPU, cores, memory, load, Python, NumPy and its BLAS, peers."""

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

import numpy as np

from .measure import has


def describe():
    """Return [(what, value)] describing this machine and the software measured."""
    facts = [
        ("CPU", _cpu_model()),
        ("cores", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable by this process)"),
        ("memory", _memory()),
        ("load average at start (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0]),
        ("NumPy", np.__version__),
        ("NumPy's BLAS (numpy.show_config)", _blas()),
    ]
    if has("threadpoolctl"):
        from threadpoolctl import threadpool_info

        pools = [f"{p['internal_api']} {p['version']} ({p.get('architecture', '?')} kernel, "
                 f"{p['num_threads']} threads)" for p in threadpool_info()]
        facts.append(("thread pools (threadpoolctl)", "; ".join(pools)))
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if name in os.environ:
            facts.append((name, os.environ[name]))
    for package in ("torch", "scikit-learn", "threadpoolctl", "gunicorn", "flask", "pydantic"):
        facts.append((package, _version(package)))
    facts.append(("wrk", _wrk()))
    return facts


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory():
    try:
        with open("/proc/meminfo") as f:
            total_kb = int(f.readline().split()[1])
        return f"{total_kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _blas():
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except (TypeError, KeyError):
        return "unknown"


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk():
    if not shutil.which("wrk"):
        return "not installed (the Python load client ran instead)"
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split("[")[0].strip()
