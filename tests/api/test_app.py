"""The app's seams: it serves the Service it is given, over the backends that were built."""

import pytest

from service import backends, create_app
from service.core import Service
from service.jobs import SqliteJobs
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.settings import Settings
from service.store import FileStore


def test_create_app_serves_the_service_it_is_given(tmp_path):
    settings = Settings(store_dir=tmp_path / "unused", run_jobs=False)
    store = FileStore(tmp_path / "given")
    x, y = datasets.xor()
    model, fit = Model.train(Architecture(), x, y, TrainingConfig(epochs=300))
    store.save("given", model, dataset={"kind": "xor"}, metrics={"loss": fit.loss},
               history=fit.history, x=x, y=y)
    service = Service(settings, store=store, jobs=SqliteJobs(tmp_path / "jobs.sqlite3"))
    client = create_app(service=service.start()).test_client()
    try:
        assert [m["name"] for m in client.get("/v1/models").json["models"]] == ["given"]
        r = client.post("/v1/models/given/predict", json={"x1": 0.1, "x2": 0.9})
        assert r.status_code == 200 and r.json["version"] == 1
        assert client.get("/readyz").status_code == 200
        assert not (tmp_path / "unused").exists()  # nothing was built from the settings
    finally:
        service.stop()


def test_create_app_refuses_a_service_without_jobs_or_with_other_settings(tmp_path):
    settings = Settings(store_dir=tmp_path)
    no_jobs = Service(settings, store=backends.build_store(settings))
    with pytest.raises(ValueError, match="job backend"):
        create_app(service=no_jobs)
    store, jobs = backends.build(settings)
    with pytest.raises(ValueError, match="no other settings"):
        create_app(Settings(store_dir=tmp_path / "other"), Service(settings, store=store,
                                                                   jobs=jobs))


def test_backends_are_built_from_the_settings(tmp_path):
    settings = Settings(store_dir=tmp_path / "store", jobs_db=tmp_path / "jobs.db")
    store, jobs = backends.build(settings)
    assert isinstance(store, FileStore) and store.root == tmp_path / "store"
    assert isinstance(jobs, SqliteJobs) and jobs.path == tmp_path / "jobs.db"
    backends.prepare(settings)  # the master's step: the job database exists afterwards
    assert (tmp_path / "jobs.db").exists()
