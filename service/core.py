"""The service layer: train, predict, list, delete. The HTTP views call these and nothing else."""

import logging
import math
import threading

import numpy as np

from . import boundaries, metrics, plots, streams, sweep_plots, sweeps, trainer, unitplots
from .errors import InvalidInput, JobNotFound, ModelNotFound, StoreUnavailable, SweepNotFound
from .jobs import WORKER_LOST, JobRunner
from .lru import Lru
from .nn.model import SMALL_ROWS
from .schemas import SweepRequest, TrainingRequest
from .store.base import read_latest

log = logging.getLogger("nnserve")
CANCEL_WAIT_S = 2.0  # a running job notices a cancel within its next progress report
HEARTBEAT_S = 2.0  # a running job's heartbeat, or a third of its lease when that is shorter
FIGURES_KEPT = 16  # rendered model figures per process: a stored version's never changes


class Service:
    """nnserve's operations over the model store and the job backend it is given.

    store is a ModelStore, jobs a JobBackend (None: no training jobs, as for the command
    line); backends.build(settings) makes both from the settings.
    """

    def __init__(self, settings, *, store, jobs=None):
        self.settings, self.store, self.jobs = settings, store, jobs
        # The context every request model is validated with: the limits it checks itself.
        self.limits = {"max_train_points": settings.max_train_points,
                       "max_predict_points": settings.max_predict_points}
        self.figures = Lru(FIGURES_KEPT)
        self._waits = threading.BoundedSemaphore(settings.max_waits)  # submit's ?wait=
        self.runner = None if jobs is None else JobRunner(
            jobs, self._execute, max_running=settings.max_running_jobs,
            timeout_s=settings.job_timeout_s, retention_s=settings.job_retention_s,
            heartbeat_s=min(HEARTBEAT_S, settings.job_lease_s / 3))
        self.streams = None if jobs is None else streams.Streams(
            jobs, max_open=settings.max_streams, keepalive_s=settings.stream_keepalive_s)
        self.boundaries = None if jobs is None else boundaries.JobBoundaries(
            jobs, self._check_work)

    def start(self):
        """Fail jobs orphaned by a previous run and start this process's runner; return self."""
        if self.jobs is not None:
            try:
                self.jobs.recover()
            except StoreUnavailable as exc:  # a worker booting during an outage: its reads
                log.warning("cannot look for lost jobs now: %s", exc)  # and claims reap later
            if self.settings.run_jobs:
                self.runner.start()
        return self

    def drain(self):
        """Begin stopping (gunicorn's SIGTERM): end this process's event streams and claim
        no more jobs, so queued ones wait for a process that stays; a running job goes on
        until stop()."""
        if self.streams is not None:
            self.streams.close_all()
        if self.runner is not None:
            self.runner.stop_claiming()

    def stop(self):
        """End this process's event streams and stop its runner (a running job fails as
        interrupted)."""
        if self.streams is not None:
            self.streams.close_all()
        if self.runner is not None:
            self.runner.stop()

    # ----- training jobs -----

    def submit(self, req: TrainingRequest, wait=0.0):
        """Return the new job after checking every limit: as it is once ended or after wait s."""
        trainer.check_limit("max_wait_s", wait, self.settings.max_wait_s, ("wait",))
        trainer.check_request(req, self.settings)
        job = self.jobs.create(req.model, req.model_dump(mode="json"), req.training.epochs)
        metrics.JOBS_SUBMITTED.inc()
        self.runner.wake()
        # A wait sleeps on a request thread: past max_waits of them, the job is answered as
        # created, so waiting clients cannot hold every thread (/healthz stalled for 8 s).
        if wait <= 0 or not self._waits.acquire(blocking=False):
            return job
        try:
            return self.jobs.wait(job["id"], wait, known=job)
        finally:
            self._waits.release()

    def job(self, job_id, kind="training"):
        """Return one job of kind (a sweep is not found as a training, nor the reverse)."""
        job = self.jobs.get(job_id)
        if job["kind"] != kind:
            raise JobNotFound(job_id) if kind == "training" else SweepNotFound(job_id)
        return job

    def list_jobs(self, query):
        """Return (jobs, total), newest first: summaries unless query.view is "full"."""
        return self.jobs.list(query.status, query.model, query.limit, query.offset,
                              full=query.view == "full")

    def job_counts(self):
        """Return {status: number of jobs} across every process."""
        return self.jobs.counts()

    def cancel(self, job_id, kind="training"):
        """Return the job after asking it to stop, once stopped or after a moment (409: ended)."""
        self.job(job_id, kind)
        self.jobs.cancel(job_id)
        return self.jobs.wait(job_id, CANCEL_WAIT_S)

    def job_events(self, job_id, last_event_id=None, peer=streams.always_open):
        """Return the open event stream of a training job (an iterable of SSE text whose
        close() frees its place), resuming after the Last-Event-ID header's event if given;
        peer() says what is known of its client (streams.peer)."""
        after = streams.last_event_id(last_event_id)
        self.job(job_id)  # a training's: a sweep is not found here
        return self.streams.open(job_id, after, peer)

    # ----- sweeps -----

    def submit_sweep(self, req: SweepRequest):
        """Return the new sweep job after checking every trial as a training and the whole
        against the limits (422 naming the grid key), before any work."""
        trials = sweeps.check_sweep(req, self.settings)
        epochs = sum(t.training.epochs for t in trials)
        job = self.jobs.create(req.model, req.model_dump(mode="json"), epochs, kind="sweep")
        metrics.JOBS_SUBMITTED.inc()
        self.runner.wake()
        return job

    def sweep_here(self, req: SweepRequest, report, save=False):
        """Return the trials' states of a sweep run here and now (checked as submit_sweep
        checks it, before any work); saved as versions only with save."""
        sweeps.check_sweep(req, self.settings)
        job = {"id": "local", "request": req.model_dump(mode="json")}
        return sweeps.run_sweep(self, job, report, save=save)

    def sweep(self, sweep_id):
        """Return one sweep job."""
        try:
            return self._with_saved_trials(self.job(sweep_id, "sweep"))
        except JobNotFound:
            raise SweepNotFound(sweep_id) from None

    def list_sweeps(self, query):
        """Return (sweep jobs, total), newest first."""
        jobs, total = self.jobs.list(limit=query.limit, offset=query.offset, kind="sweep",
                                     full=True)
        return [self._with_saved_trials(job) for job in jobs], total

    def _with_saved_trials(self, job):
        """Return a sweep job whose worker was lost (failed so, or ended cancelled by the
        reap, a cancel asked before) with each trial it saved shown saved: its last report
        may predate the saves (the versions carry the sweep's id and trial)."""
        lost = job["status"] == "failed" and job["error"] == WORKER_LOST
        if not lost and job["status"] != "cancelled":
            return job
        saved = sweeps.saved_trials(self.store, job["model"], job["id"])
        trials = list((job["progress"] or {}).get("trials") or [])
        if not saved or not trials:
            return job
        for i, meta in saved.items():
            if i < len(trials):
                trials[i] = sweeps.saved_state(meta)
        return {**job, "progress": {**job["progress"], "trials": trials}}

    def cancel_sweep(self, sweep_id):
        """Return the sweep after cancelling what has not finished (409 once it has ended)."""
        self.sweep(sweep_id)
        self.jobs.cancel(sweep_id)
        return self.jobs.wait(sweep_id, CANCEL_WAIT_S)

    def train(self, req: TrainingRequest, on_progress=None, report_every=None):
        """Return the Fitted of a request trained here and now (limits apply), not saved."""
        trainer.check_request(req, self.settings)
        return trainer.fit_request(req, on_progress, report_every)

    def _execute(self, job, report):
        """Train the job's network and save it; return the result, or None if told to stop."""
        if job["kind"] == "sweep":
            return sweeps.run_sweep(self, job, report)
        req = TrainingRequest.model_validate(job["request"])
        progress = trainer.JobProgress(req.training.epochs, report, trainer.build_network(req)[0])
        fitted = trainer.fit_request(req, progress)
        # The last word before saving: a cancel that comes after it finds the model saved.
        if fitted.fit.stop_reason == "cancelled" or report(
                progress.final(fitted), fitted.fit.history, last=True,
                snapshot=progress.final_snapshot(fitted)):
            return None
        meta = self.save(req.model, fitted, self.job_fence(job, _job_result), job=job.get("id"))
        metrics.TRAINING_SECONDS.observe(fitted.seconds)
        return _job_result(meta)

    # ----- models and predictions -----

    def save(self, name, fitted, fence=None, job=None):
        """Return the meta of a new version of name holding a Fitted model (fenced by a job's
        lease when fence is given; job, the id of the job that trained it)."""
        return self.store.save(name, fitted.model, dataset=fitted.dataset,
                               metrics=fitted.metrics(), history=fitted.fit.history,
                               x=fitted.x, y=fitted.y, job=job, fence=fence)

    def job_fence(self, job, result=None):
        """Return the Fence of a claimed job's saves, or None for work not run as a job;
        result (meta -> the job's result) for a job whose one save ends it."""
        return self.jobs.fence(job["id"], job["lease"], result) if job.get("lease") else None

    def list_models(self):
        """Return every model with its latest version and metrics."""
        return self.store.list_models()

    def models_page(self, limit, offset):
        """Return (models, total): a page of list_models(), by name."""
        rows = self.store.list_models()
        return rows[offset:offset + limit], len(rows)

    def versions(self, name):
        """Return the metadata of every version of a model (404 if it has none), each
        listing its aliases."""
        return self.model_detail(name)[0]

    def model_detail(self, name):
        """Return (versions, aliases) of a model from one read of each: every version's
        metadata listing its aliases, and {alias: version} of the versions listed, so the
        two agree while aliases move and versions come and go."""
        metas = self.store.versions(name)
        listed = {meta["version"] for meta in metas}
        aliases = {a: v for a, v in self.store.aliases(name).items() if v in listed}
        return [_with_aliases(meta, aliases) for meta in metas], aliases

    def aliases(self, name):
        """Return {alias: version} of a model."""
        return self.store.aliases(name)

    def version(self, name, version):
        """Return one version's metadata, with its aliases."""
        return _with_aliases(self.store.meta(name, version), self.store.aliases(name))

    def set_alias(self, name, alias, version):
        """Point a model's alias at one of its versions (404 naming a missing version)."""
        self.store.set_alias(name, alias, version)
        return {"name": name, "alias": alias, "version": version}

    def delete_alias(self, name, alias):
        """Remove a model's alias (its version stays)."""
        self.store.delete_alias(name, alias)

    def alias_version(self, name, alias):
        """Return the version a model's alias points at (404 when there is no such alias)."""
        return self.store.alias_version(name, alias)

    def delete(self, name, version=None):
        """Delete one version, or the whole model."""
        self.store.delete(name, version)

    def export(self, name, version):
        """Return (bytes, filename) of a version's .npz file."""
        return self.store.export(name, version)

    def upload(self, name, data):
        """Return the metadata of a new version made from uploaded .npz bytes (limits apply)."""
        return self.store.import_npz(name, data, check=lambda model: trainer.check_network(
            list(model.arch.layers[1:-1]), self.settings, ("body",)))

    def predict(self, name, version, points, threshold=0.5):
        """Return (version, scores, labels) as lists for points under a version (None: latest)."""
        model, meta = self.store.load(name, version)
        self._check_work(model, len(points), ("points",))
        scores, labels = model.classify(points, threshold)
        return _served(meta, scores, labels, all(map(math.isfinite, scores)))

    def predict_array(self, name, version, x, threshold=0.5, field=("inputs", 0)):
        """Return (version, scores, labels) as arrays of x (n, 2) under a version (None: last);
        field names x in a refusal."""
        model, meta = self.store.load(name, version)
        self._check_work(model, len(x), field)
        if len(x) <= SMALL_ROWS:  # /v2's few points (issue 16's 1-point p99): on floats, as /v1
            scores, labels = model.classify(x.tolist(), threshold)
            scores, labels = np.array(scores), np.array(labels, np.int64)
        else:
            scores, labels = model.predict(x, threshold)
        return _served(meta, scores, labels, np.isfinite(scores).all())

    def training_points(self, name, version, limit):
        """Return {model, version, points, labels, stored}: a version's (None: latest)
        stored training points, evenly thinned to at most limit."""
        meta, (x, y) = read_latest(version, lambda: self._meta_and_points(name, version))
        step = -(-len(x) // limit) if len(x) else 1
        return {"model": name, "version": meta["version"], "points": x[::step].tolist(),
                "labels": y[::step].astype(int).tolist(), "stored": len(x)}

    def loaded_version(self, name, version=None):
        """Return the number of the version (None: latest) once it is loaded and checked."""
        return self.store.load(name, version)[1]["version"]

    def model_figure(self, name, version, width, height):
        """Return the PNG of a version (None: latest): truth vs predictions, boundary, curve.

        Rendering is costly (benchmarks/RESULTS.md), so the last FIGURES_KEPT are kept."""
        return self._figure("model", name, version, width, height)

    def units_figure(self, name, version, width, height):
        """Return the PNG of a version's units (None: latest): each unit's activation over
        the data's range, layer by layer, and the weights between them; kept as the model
        figure is."""
        return self._figure("units", name, version, width, height)

    def _check_work(self, model, points, field=None):
        """Refuse a prediction or figure over NNSERVE_MAX_PREDICT_WORK: points x parameters."""
        work = points * model.params["theta"].size
        trainer.check_limit("max_predict_work", work, self.settings.max_predict_work, field)

    def _meta_and_points(self, name, version):
        meta = self.store.meta(name, version)
        return meta, self.store.points(name, meta["version"])

    def _figure(self, kind, name, version, width, height):
        return read_latest(version, lambda: self._version_figure(kind, name, version, width,
                                                                 height))

    def _version_figure(self, kind, name, version, width, height):
        model, meta = self.store.load(name, version)
        # refused alike whether or not it is drawn already: the answer never depends on a cache
        self._check_work(model, unitplots.UNITS_GRID ** 2 if kind == "units"
                         else plots.GRID ** 2 + meta["points_stored"])
        # A version's file never changes; created_at and the weights' checksum tell a
        # version saved again under a freed number from the one it replaced.
        key = (kind, name, meta["version"], meta["created_at"], meta["sha256"], width, height)
        png = self.figures.get(key)
        if png is None:  # kept in the store too, beside the version, for every worker
            stored_key = f"{width}x{height}-{meta['sha256'][:16]}"
            stored_key = stored_key if kind == "model" else f"{kind}-{stored_key}"
            png = self.store.figure(name, meta["version"], stored_key)
            if png is None:
                x, y = self.store.points(name, meta["version"])
                title = f"{name} version {meta['version']}"
                if kind == "units":
                    png = unitplots.units_png(model, x, width, height, title)
                else:
                    png = plots.model_png(model, x, y, meta["history"], width, height, title)
                self.store.put_figure(name, meta["version"], stored_key, png)
            self.figures.put(key, png)
        return png

    def sweep_figure(self, sweep_id, width, height, best_few=3):
        """Return the PNG comparing a sweep's trials (curves, metric per parameter, the best
        few's boundaries); kept as a model's figure is once the sweep has ended."""
        job = self.sweep(sweep_id)
        key = ("sweep", sweep_id, job["finished_at"], width, height)
        png = self.figures.get(key) if job["finished_at"] else None
        if png is not None:
            return png
        view = sweeps.sweep_view(job)
        trials, name = view["trials"], view["model"]
        curves, best = {}, []
        for t in trials:  # the trials whose versions are still theirs
            if t["version"] is not None:
                try:
                    meta = self.store.meta(name, t["version"])
                except ModelNotFound:  # deleted since
                    continue
                if sweeps.trial_of(meta, sweep_id) == t["trial"]:
                    curves[t["trial"]] = meta["history"]
        for i in sweeps.ranked_trials(trials, view["metric"]):
            if len(best) == best_few or i not in curves:
                continue
            try:
                model, meta = self.store.load(name, trials[i]["version"])
                x, y = self.store.points(name, trials[i]["version"])
            except ModelNotFound:  # deleted since its curve was read
                continue
            if sweeps.trial_of(meta, sweep_id) == i:
                best.append((i, model, x, y))
        title = f"sweep {sweep_id[:8]} of {name}: {view['status']}"
        png = sweep_plots.sweep_png(trials, curves, best, view["metric"], width, height, title)
        if job["finished_at"]:
            self.figures.put(key, png)
        return png

    def job_figure(self, job_id, width, height):
        """Return the PNG of a job's learning curve so far."""
        job = self.job(job_id)
        title = f"{job['model']}: job {job['status']}"
        return plots.curve_png(job["history"], width, height, title)

    def boundary_figure(self, job_id, width, height):
        """Return the PNG of a training job's decision boundary as it is now, from its latest
        snapshot (409 NoSnapshot while it has none)."""
        return self.boundaries.png(job_id, width, height)

    # ----- operations -----

    def readiness(self):
        """Return {check: problem} for each failing dependency (empty when ready)."""
        problems = {}
        for check, probe in (("store", self.store.ping), ("jobs", self.jobs.ping)):
            try:
                probe()
            except Exception as exc:  # noqa: BLE001 - every failure makes the service not ready
                problems[check] = getattr(exc, "detail", type(exc).__name__)
        return problems


def _with_aliases(meta, aliases):
    """Return a copy of a version's metadata listing the aliases that point at it."""
    return {**meta, "aliases": [a for a, v in aliases.items() if v == meta["version"]]}


def _served(meta, scores, labels, finite):
    """Return (version, scores, labels) of a prediction, counted; refused if not all finite."""
    if not finite:  # an uploaded model's weights can overflow
        raise InvalidInput("the model's output is not a finite number for these points",
                           field=("points",))
    metrics.POINTS_PREDICTED.inc(len(scores))
    return meta["version"], scores, labels


def saved_result(store, job):
    """Return the result of a training job lost while saving if its version is in the store
    (its save landed, its finish did not): the newest version of its model that carries the
    job's id; None when there is none."""
    try:
        metas = store.versions(job["model"])
    except ModelNotFound:
        return None
    mine = [meta for meta in metas if meta.get("job") == job["id"]]
    return _job_result({**mine[-1], "name": job["model"]}) if mine else None


def _job_result(meta):
    """Return a training job's result: the version it saved, by its stored meta."""
    return {"name": meta["name"], "version": meta["version"], "metrics": meta["metrics"]}
