"""MLServer 1.7, the peer of /v2: scikit-learn's MLPClassifier((4, 4)) trained on the lab's XOR.

MLServer lives in a venv of its own (`make bench` builds .venv-mlserver from
benchmarks/mlserver-requirements.txt): it needs fastapi < 0.116, so starlette < 0.47,
while the dev extra's kserve needs starlette >= 1.3.1. It runs with its defaults on
free loopback ports, in a process group of its own, stopped by that group's id.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from service.nn.datasets import xor

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("NNSERVE_BENCH_MLSERVER_VENV", ROOT / ".venv-mlserver"))
MODEL = "xor"
TRAIN = """\
import json, sys
import joblib
from sklearn.neural_network import MLPClassifier
x, y = json.loads(sys.argv[2])
model = MLPClassifier(hidden_layer_sizes=(4, 4), max_iter=20000, tol=1e-6, random_state=0)
joblib.dump(model.fit(x, y), sys.argv[1])
print(model.score(x, y))
"""


def installed():
    """Return True when the MLServer venv is there."""
    return (VENV / "bin" / "mlserver").exists()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MLServer:
    """`mlserver start` serving model "xor" on a free port; stop() ends its process group."""

    def __init__(self, folder):
        self.folder, self.port = Path(folder), _free_port()
        model_dir = self.folder / MODEL
        model_dir.mkdir(parents=True)
        x, y = xor()
        trained = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", TRAIN, str(model_dir / "model.joblib"),
             json.dumps([x.tolist(), y.astype(int).tolist()])],
            capture_output=True, text=True, timeout=120, check=True)
        self.train_accuracy = float(trained.stdout.split()[-1])
        (model_dir / "model-settings.json").write_text(json.dumps({
            "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"}}))
        (self.folder / "settings.json").write_text(json.dumps({
            "http_port": self.port, "grpc_port": _free_port(), "metrics_port": _free_port(),
            "host": "127.0.0.1"}))
        self.log = self.folder / "mlserver.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(VENV / "bin" / "mlserver"), "start",
                                          str(self.folder)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, request, timeout=120):
        """Return self once the model answers ready; raise if MLServer exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlserver exited {self.proc.returncode}: see {self.log}")
            try:
                if request(self.port, "GET", f"/v2/models/{MODEL}/ready")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"mlserver not ready in {timeout} s: see {self.log}")

    def processes(self):
        """Return the PIDs of MLServer's process group (the server and its workers)."""
        out = subprocess.run(["ps", "-o", "pid=", "-g", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self, timeout=30):
        """Stop MLServer's process group by its id (SIGKILL after timeout)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:  # workers that outlived the server
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
