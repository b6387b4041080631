"""Prometheus metrics, correct across gunicorn's worker processes.

Under gunicorn, service/gunicorn_conf.py sets PROMETHEUS_MULTIPROC_DIR before the
workers start, and prometheus-client then keeps each worker's samples in
files there; a scrape aggregates them.
"""

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from .errors import StoreUnavailable

REQUESTS = Counter(
    "nnserve_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "nnserve_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
POINTS_PREDICTED = Counter("nnserve_points_predicted_total", "Points classified")
JOBS_SUBMITTED = Counter("nnserve_training_jobs_submitted_total", "Training jobs accepted")
TRAINING_SECONDS = Histogram(
    "nnserve_training_seconds",
    "Wall-clock seconds of successful training runs",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600),
)


_BY_REQUEST = {}  # (method, route, status) -> its (REQUESTS, LATENCY) children
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def count_request(method, route, status, seconds=None):
    """Count one answered request and, when its duration is known, observe it.

    Any other method counts as "other": a client must not grow the label sets at will."""
    key = (method if method in METHODS else "other", route, str(status))
    children = _BY_REQUEST.get(key)
    if children is None:  # labels() takes a lock and checks its arguments each time
        children = _BY_REQUEST[key] = (REQUESTS.labels(*key), LATENCY.labels(*key))
    children[0].inc()
    if seconds is not None:
        children[1].observe(seconds)


class JobsByStatus:
    """A collector calling counts() at scrape time: jobs by status, across workers. While
    the job backend cannot answer (a database restarting), the gauges are left out and
    nnserve_training_jobs_readable says 0: the request counters are still scraped."""

    def __init__(self, counts):
        self.counts = counts

    def collect(self):
        family = GaugeMetricFamily("nnserve_training_jobs", "Training jobs by status",
                                   labels=["status"])
        try:
            counts = self.counts()
        except StoreUnavailable:
            counts = None
        for status, count in sorted((counts or {}).items()):
            family.add_metric([status], count)
        yield family
        yield GaugeMetricFamily("nnserve_training_jobs_readable",
                                "1 if the job gauges were read at this scrape, 0 if the job"
                                " backend could not answer (they are left out)",
                                value=float(counts is not None))


def render(job_counts):
    """Return the Prometheus text exposition of every metric, aggregated over workers, with
    the job gauges read from job_counts()."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    registry_with_jobs = CollectorRegistry()
    registry_with_jobs.register(JobsByStatus(job_counts))
    return generate_latest(registry) + generate_latest(registry_with_jobs)
