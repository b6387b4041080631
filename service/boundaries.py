"""A training job's decision boundary as it stands: its latest snapshot, drawn over its points.

The snapshot (snapshots.py) comes from the job backend alone, so every worker (and host)
draws the same figure whichever one runs the job. A figure is kept per snapshot and size,
and a job's points per job (its request never changes): the dashboard asks again at
every progress event.
"""

import numpy as np

from . import plots, snapshots, trainer
from .errors import JobNotFound, NoSnapshot
from .jobs import TERMINAL
from .lru import Lru
from .nn.network import Architecture, count_params
from .schemas import TrainingRequest

FIGURES_KEPT = 8  # boundaries this process keeps, apart from the model figures they would churn
POINTS_KEPT = 8  # jobs whose points this process keeps
MAX_DRAWN = 2000  # points drawn over the boundary; a larger set is drawn evenly thinned
RETRY_S = 1  # Retry-After of a job that will have a snapshot soon: within a write interval


class JobBoundaries:
    """Draws the boundaries of the jobs in jobs (a JobBackend), keeping the last
    FIGURES_KEPT; check_work(model, points) refuses a figure over the prediction work
    limit."""

    def __init__(self, jobs, check_work):
        self.jobs, self.check_work = jobs, check_work
        self.figures, self.points = Lru(FIGURES_KEPT), Lru(POINTS_KEPT)

    def png(self, job_id, width, height):
        """Return the PNG of a training job's boundary now; JobNotFound, or NoSnapshot (409)
        naming why there is nothing to draw yet."""
        job = self.jobs.summary(job_id)
        if job["kind"] != "training":
            raise JobNotFound(job_id)
        snap = self.jobs.snapshot(job_id)
        if snap is None:
            raise _missing(job)
        try:
            model = snapshots.model_of(snap)
        except ValueError as exc:  # a record this release did not write
            raise NoSnapshot(job_id, str(exc)) from None
        self.check_work(model, plots.GRID ** 2)  # alike whether or not it is kept already
        progress = job["progress"]
        epoch = snap.get("epoch")
        key = ("boundary", job_id, job["status"], epoch, snap["theta"], width, height)
        png = self.figures.get(key)
        if png is None:
            x, y = self._points(job_id)
            title = (f"{job['model']}: job {job_id[:8]} {job['status']}, "
                     f"epoch {epoch} of {progress['epochs']}")
            png = plots.boundary_png(model, x, y, width, height, title)
            self.figures.put(key, png)
        return png

    def _points(self, job_id):
        """Return the (x, y) a job trains on, thinned to MAX_DRAWN."""
        kept = self.points.get(job_id)
        if kept is None:
            req = TrainingRequest.model_validate(self.jobs.get(job_id)["request"])
            x, y, _ = trainer.build_dataset(req.dataset)
            step = -(-len(x) // MAX_DRAWN)
            kept = (np.asarray(x)[::step], np.asarray(y)[::step])
            self.points.put(job_id, kept)
        return kept


def _missing(job):
    """Return the NoSnapshot of a job that has none, saying why."""
    job_id, status, network = job["id"], job["status"], job["request"].get("network") or {}
    arch = Architecture((2, *network.get("hidden", ()), 1), bias=network.get("bias", True))
    if count_params(arch) > snapshots.MAX_PARAMS:
        return NoSnapshot(job_id, f"its network has {count_params(arch)} weights, over the "
                          f"{snapshots.MAX_PARAMS} a snapshot holds; its saved model has "
                          "a figure of its own")
    if status in TERMINAL:
        return NoSnapshot(job_id, f"it ended {status} before its first progress report")
    reason = "it is queued" if status == "queued" else "it has not reported progress yet"
    return NoSnapshot(job_id, f"{reason}; its first progress report brings them",
                      retry_after=RETRY_S)
