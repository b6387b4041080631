"""What the store tests share: saving the trained model, comparing weights, child processes
that save and delete, and warming a file store's memory."""

import contextlib
import os
import subprocess
import sys
import time

import numpy as np

from service.store import SETTLED_NS

# A child process: trains a small model (hidden layers of `width` units), waits for a common
# start time, then saves it count times (forever when count is -1), printing each version
# as soon as it is saved; with n > 0 it stores n linear points instead of XOR's 21.
SAVER = """
import sys, time
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store import FileStore

root, name, count, seed, start, n, width = sys.argv[1:]
x, y = datasets.xor()
arch = Architecture((2, int(width), int(width), 1))
model, _ = Model.train(arch, x, y, TrainingConfig(epochs=5, seed=int(seed)))
points = datasets.linear(int(n)) if int(n) else (x, y)
store = FileStore(root)
while time.time() < float(start):
    time.sleep(0.001)
saved = 0
while saved != int(count):
    meta = store.save(name, model, dataset={"kind": "child"}, metrics={"seed": int(seed)},
                      history={}, x=points[0], y=points[1])
    print(meta["version"], flush=True)
    saved += 1
"""
DELETER = """
import sys
from service.store import FileStore

root, name, version = sys.argv[1:]
FileStore(root).delete(name, int(version))
"""


def save(store, name, trained, **overrides):
    """Return the meta of a save of the trained XOR model under name."""
    model, result, x, y = trained
    kwargs = {
        "dataset": {"kind": "xor", "n": len(x)},
        "metrics": {"loss": result.loss, "accuracy": result.accuracy, "epochs": result.epochs_run,
                    "seconds": 0.01, "stop_reason": result.stop_reason},
        "history": result.history,
        "x": x,
        "y": y,
    }
    return store.save(name, model, **{**kwargs, **overrides})


def assert_same_weights(a, b):
    arrays_a, _ = a.to_arrays()
    arrays_b, _ = b.to_arrays()
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        assert arrays_a[key].dtype == arrays_b[key].dtype
        assert np.array_equal(arrays_a[key], arrays_b[key])


def delete_in_child(root, name, version):
    subprocess.run([sys.executable, "-c", DELETER, str(root), name, str(version)], timeout=60,
                   check=True)


def start_savers(root, name, count, processes, start, n=0, width=4):
    """Return SAVER children with seeds 0, 1, ..., their stdout piped."""
    children = []
    for seed in range(processes):
        args = [str(a) for a in (root, name, count, seed, start, n, width)]
        children.append(subprocess.Popen([sys.executable, "-c", SAVER, *args],
                                         stdout=subprocess.PIPE, text=True))
    return children


def visible(root):
    """Return the entries of root that are not hidden (the store's own files are)."""
    return sorted(name for name in os.listdir(root) if not name.startswith("."))


@contextlib.contextmanager
def counted_stats():
    """Yield the list of paths os.stat is called on while the block runs."""
    calls, real = [], os.stat

    def counted(*args, **kwargs):
        calls.append(os.fspath(args[0]))
        return real(*args, **kwargs)

    os.stat = counted
    try:
        yield calls
    finally:
        os.stat = real


def settle(store, name):
    """Age the model's folder past SETTLED_NS, as if it had been left alone a while."""
    past = time.time_ns() - 10 * SETTLED_NS
    os.utime(store.root / name, ns=(past, past))


def warm(store, name):
    """Load name until its folder's stat is kept and the counter mapped: the warm path, which
    test_contract_warm_loads.py shows three loads of a settled folder reach."""
    settle(store, name)
    for _ in range(3):
        store.load(name)
