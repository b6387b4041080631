"""Fixtures of the unit tests: every job backend and every model store, and a runner starter.

The interface tests take `jobs` or `store`, which run them once against each
implementation: a new backend joins by adding its name to BACKENDS or STORES here.
"""

import pytest

from service.jobs import JobRunner, SqliteJobs
from service.jobs.postgres import PgJobs
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store import FileStore
from service.store.postgres import PgStore

JOB_BACKENDS = {
    "sqlite": lambda request, tmp_path: SqliteJobs(tmp_path / "jobs.sqlite3"),
    "postgres": lambda request, tmp_path: PgJobs(request.getfixturevalue("pg_database")),
}
STORES = {
    "files": lambda request, tmp_path, **options: FileStore(tmp_path / "store", **options),
    "postgres": lambda request, tmp_path, **options: PgStore(
        request.getfixturevalue("pg_database"), **options),
}


@pytest.fixture(params=sorted(JOB_BACKENDS))
def jobs(request, tmp_path):
    """An empty job backend, once per implementation."""
    return JOB_BACKENDS[request.param](request, tmp_path)


@pytest.fixture(params=sorted(STORES))
def make_store(request, tmp_path):
    """Return make(**options) -> a model store, once per implementation; each call of one
    test gets a store on the same data (another process's view of it)."""
    return lambda **options: STORES[request.param](request, tmp_path, **options)


@pytest.fixture
def store(make_store):
    """An empty model store, once per implementation."""
    return make_store()


@pytest.fixture
def start_runner(jobs):
    """Return start(execute, **options) -> a started JobRunner on jobs; all are stopped after."""
    runners = []

    def start(execute, **options):
        options = {"max_running": 2, "timeout_s": 10.0, "poll_s": 0.05, **options}
        runners.append(JobRunner(jobs, execute, **options).start())
        return runners[-1]

    yield start
    for runner in runners:
        runner.stop(timeout=2.0)


@pytest.fixture(scope="session")
def trained():
    """Return (model, result, x, y): the lab's XOR network after a short training."""
    x, y = datasets.xor()
    model, result = Model.train(Architecture(), x, y, TrainingConfig(epochs=50))
    return model, result, x, y


@pytest.fixture(scope="session")
def valid_npz(tmp_path_factory, trained):
    """Return the bytes of a valid model file, as exported."""
    store = FileStore(tmp_path_factory.mktemp("source"))
    model, result, x, y = trained
    store.save("src", model, dataset={"kind": "xor", "n": len(x)}, history=result.history,
               metrics={"loss": result.loss, "accuracy": result.accuracy}, x=x, y=y)
    return store.export("src", 1)[0]
