"""The service layer: train, predict, list, delete. The HTTP views call these and nothing else."""

import logging
import math
import time

import numpy as np

from . import metrics, plots
from .errors import InvalidInput, LimitExceeded
from .jobs import JobRunner, SqliteJobs
from .nn.datasets import DATASETS, check_dataset
from .nn.model import Model
from .nn.network import Architecture, count_params
from .nn.training import TrainingConfig
from .schemas import TrainingRequest
from .store import Lru, ModelStore

log = logging.getLogger("nnserve")
MAX_JOB_HISTORY = 1000
CANCEL_WAIT_S = 2.0  # a running job notices a cancel within its next progress report
FIGURES_KEPT = 16  # rendered model figures per process: a stored version's never changes
REPORT_WORK = 200_000  # points per progress check: every 100 epochs of XOR, every epoch of 10^6


def build_dataset(spec):
    """Return (x, y, summary) for a dataset spec of a TrainingRequest."""
    params = spec.model_dump(exclude={"kind", "points", "labels"})
    if spec.kind == "points":
        x, y = spec.points, spec.labels
    else:
        x, y = DATASETS[spec.kind](**params)
    try:
        x, y = check_dataset(x, y)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=("dataset",)) from None
    return x, y, {"kind": spec.kind, "n": len(x), **params}


def fit_metrics(fit, seconds):
    """Return the metrics a saved model carries: final loss and accuracy, epochs, time, stop."""
    return {"loss": fit.loss, "accuracy": fit.accuracy, "epochs": fit.epochs_run,
            "seconds": round(seconds, 6), "stop_reason": fit.stop_reason}


def build_network(req):
    """Return (Architecture, TrainingConfig) of a TrainingRequest."""
    net = req.network
    arch = Architecture((2, *net.hidden, 1), net.activation, net.output_activation, net.bias)
    config = TrainingConfig(**req.training.model_dump(), seed=net.seed)
    return arch, config


class Service:
    """nnserve's operations over one model store and one job backend."""

    def __init__(self, settings):
        self.settings = settings
        self.store = ModelStore(settings.store_dir, settings.cache_size)
        self.figures = Lru(FIGURES_KEPT)
        self.jobs = SqliteJobs(settings.jobs_path)
        self.runner = JobRunner(
            self.jobs,
            self._execute,
            max_running=settings.max_running_jobs,
            timeout_s=settings.job_timeout_s,
            retention_s=settings.job_retention_s,
        )

    def start(self):
        """Fail jobs orphaned by a previous run and start this process's runner; return self."""
        self.jobs.fail_interrupted()
        if self.settings.run_jobs:
            self.runner.start()
        return self

    def stop(self):
        """Stop this process's runner (a running job fails as interrupted)."""
        self.runner.stop()

    # ----- training jobs -----

    def submit(self, req: TrainingRequest, wait=0.0):
        """Return the new job after checking every limit: as it is once ended or after wait s."""
        _limit("max_wait_s", wait, self.settings.max_wait_s, ("wait",))
        self._check_limits(req)
        job = self.jobs.create(req.model, req.model_dump(mode="json"), req.training.epochs)
        metrics.JOBS_SUBMITTED.inc()
        self.runner.wake()
        return self.jobs.wait(job["id"], wait) if wait > 0 else job

    def job(self, job_id):
        """Return one job."""
        return self.jobs.get(job_id)

    def list_jobs(self, query):
        """Return (jobs, total), newest first."""
        return self.jobs.list(query.status, query.model, query.limit, query.offset)

    def cancel(self, job_id):
        """Return the job after asking it to stop, once stopped or after a moment (409: ended)."""
        self.jobs.cancel(job_id)
        return self.jobs.wait(job_id, CANCEL_WAIT_S)

    def _check_limits(self, req):
        s, net, epochs = self.settings, req.network, req.training.epochs
        self._check_network(net.hidden, ("network", "hidden"))
        _limit("max_epochs", epochs, s.max_epochs, ("training", "epochs"))
        n = _dataset_size(req.dataset)
        _limit("max_train_points", n, s.max_train_points, ("dataset",))
        build_dataset(req.dataset)  # a single-class or malformed set is refused now, not later
        arch, config = build_network(req)
        try:
            config.check(arch)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=("training",)) from None
        work = epochs * n * count_params(arch)
        _limit("max_work", work, s.max_work, ("training", "epochs"))

    def _check_network(self, hidden, field):
        """Refuse hidden layers over the configured number of layers or units."""
        s = self.settings
        _limit("max_hidden_layers", len(hidden), s.max_hidden_layers, field)
        _limit("max_hidden_units", max(hidden, default=0), s.max_hidden_units, field)

    def _execute(self, job, report):
        """Train the job's network and save it; return the result, or None if told to stop."""
        req = TrainingRequest.model_validate(job["request"])
        x, y, summary = build_dataset(req.dataset)
        arch, config = build_network(req)
        progress = _Progress(config.epochs, report)
        started = time.monotonic()
        model, fit = Model.train(arch, x, y, config, on_progress=progress,
                                 report_every=max(1, min(100, REPORT_WORK // len(x))))
        seconds = time.monotonic() - started
        # The last word before saving: a cancel that comes after it finds the model saved.
        if fit.stop_reason == "cancelled" or report(progress.final(fit, seconds), fit.history,
                                                     last=True):
            return None
        result_metrics = fit_metrics(fit, seconds)
        meta = self.store.save(req.model, model, dataset=summary, metrics=result_metrics,
                               history=fit.history, x=x, y=y)
        metrics.TRAINING_SECONDS.observe(seconds)
        return {"name": meta["name"], "version": meta["version"], "metrics": result_metrics}

    # ----- models and predictions -----

    def list_models(self):
        """Return every model with its latest version and metrics."""
        return self.store.list_models()

    def versions(self, name):
        """Return the metadata of every version of a model (404 if it has none)."""
        return self.store.versions(name)

    def version(self, name, version):
        """Return one version's metadata."""
        return self.store.meta(name, version)

    def delete(self, name, version=None):
        """Delete one version, or the whole model."""
        self.store.delete(name, version)

    def export(self, name, version):
        """Return (bytes, filename) of a version's .npz file."""
        return self.store.export(name, version)

    def upload(self, name, data):
        """Return the metadata of a new version made from uploaded .npz bytes (limits apply)."""
        return self.store.import_npz(name, data, check=lambda model: self._check_network(
            list(model.arch.layers[1:-1]), ("body",)))

    def predict(self, name, version, points, threshold=0.5):
        """Return (version, scores, labels) as lists for points under a version (None: latest)."""
        model, meta = self.store.load(name, version)
        scores, labels = model.classify(points, threshold)
        return _served(meta, scores, labels, all(map(math.isfinite, scores)))

    def predict_array(self, name, version, x, threshold=0.5):
        """Return (version, scores, labels) as arrays of x (n, 2) under a version (None: last)."""
        model, meta = self.store.load(name, version)
        scores, labels = model.predict(x, threshold)
        return _served(meta, scores, labels, np.isfinite(scores).all())

    def loaded_version(self, name, version=None):
        """Return the number of the version (None: latest) once it is loaded and checked."""
        return self.store.load(name, version)[1]["version"]

    def model_figure(self, name, version, width, height):
        """Return the PNG of a version (None: latest): truth vs predictions, boundary, curve.

        Rendering costs 0.5-2 s of CPU, so the last FIGURES_KEPT figures are kept."""
        model, meta = self.store.load(name, version)
        # A version's file never changes; created_at and the weights' checksum tell a
        # version saved again under a freed number from the one it replaced.
        key = (name, meta["version"], meta["created_at"], meta["sha256"], width, height)
        png = self.figures.get(key)
        if png is None:
            x, y = self.store.points(name, meta["version"])
            title = f"{name} version {meta['version']}"
            png = plots.model_png(model, x, y, meta["history"], width, height, title)
            self.figures.put(key, png)
        return png

    def job_figure(self, job_id, width, height):
        """Return the PNG of a job's learning curve so far."""
        job = self.jobs.get(job_id)
        title = f"{job['model']}: job {job['status']}"
        return plots.curve_png(job["history"], width, height, title)

    # ----- operations -----

    def readiness(self):
        """Return {check: problem} for each failing dependency (empty when ready)."""
        problems = {}
        for check, probe in (("store", self.store.check_writable), ("jobs", self.jobs.ping)):
            try:
                probe()
            except Exception as exc:  # noqa: BLE001 - every failure makes the service not ready
                problems[check] = getattr(exc, "detail", type(exc).__name__)
        return problems


def _served(meta, scores, labels, finite):
    """Return (version, scores, labels) of a prediction, counted; refused if not all finite."""
    if not finite:  # an uploaded model's weights can overflow
        raise InvalidInput("the model's output is not a finite number for these points",
                           field=("points",))
    metrics.POINTS_PREDICTED.inc(len(scores))
    return meta["version"], scores, labels


def _dataset_size(spec):
    """Return the number of points a dataset spec will have, without building it."""
    if spec.kind == "points":
        return len(spec.points)
    return len(DATASETS["xor"]()[0]) if spec.kind == "xor" else spec.n


def _limit(name, value, maximum, field):
    if value > maximum:
        raise LimitExceeded(name, value, maximum, field)


class _Progress:
    """The fit callback of a job: keeps a bounded history and forwards it to the runner."""

    def __init__(self, epochs, report):
        self.epochs, self.report, self.started = epochs, report, time.monotonic()
        self.history = {"epoch": [], "loss": [], "accuracy": []}

    def __call__(self, epoch, loss, accuracy):
        h = self.history
        for key, value in zip(h, (epoch, loss, accuracy), strict=True):
            h[key].append(None if isinstance(value, float) and math.isnan(value) else value)
        if len(h["epoch"]) > MAX_JOB_HISTORY:  # keep every other row: still evenly spread
            for key in h:
                h[key] = h[key][::2]
        return self.report(self._progress(epoch, loss, accuracy), h)

    def _progress(self, epoch, loss, accuracy):
        return {"epoch": epoch, "epochs": self.epochs, "loss": loss, "accuracy": accuracy,
                "elapsed_s": round(time.monotonic() - self.started, 3)}

    def final(self, fit, seconds):
        """Return the progress of the finished run."""
        return {**self._progress(fit.epochs_run, fit.loss, fit.accuracy), "elapsed_s": seconds}
