"""Run one training job on N points through Service._execute; print the peak memory as JSON.

Usage: python -m benchmarks.memory_job N. Run in a fresh process: the peak is its own
(with the interpreter and imports, which "before_mb" shows). Linux carries ru_maxrss
over an exec from the parent, so a child of a big benchmark process would report the
parent's peak; the high-water mark VmHWM of /proc/self/status starts afresh at exec.
"""

import json
import resource
import sys
import tempfile

from service import backends
from service.core import Service
from service.schemas import TrainingRequest
from service.settings import Settings

EPOCHS = 5


def peak_mb():
    """Return this process's peak resident memory in MB: VmHWM, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(points):
    """Print {"before_mb", "peak_mb"} of a default training job on linear(points)."""
    before = peak_mb()
    with tempfile.TemporaryDirectory() as store:
        settings = Settings(store_dir=store, max_train_points=points)
        service = Service(settings, store=backends.build_store(settings))
        request = TrainingRequest.model_validate({
            "model": "memory", "dataset": {"kind": "linear", "n": points},
            "training": {"epochs": EPOCHS}})
        result = service._execute({"kind": "training", "request": request.model_dump(mode="json")},
                                  lambda progress, history, last=False, snapshot=None: False)
        assert result["version"] == 1, result
    print(json.dumps({"before_mb": before, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
