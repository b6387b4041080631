"""4 gunicorn workers, 32 keep-alive connections, 20,000 predictions while the model is retrained.

The longer run with command-line arguments is `python -m benchmarks.reliability_load`.
"""

import pytest

from benchmarks import reliability_load
from service.store import FileStore

pytestmark = pytest.mark.e2e

REQUESTS = 20_000
CONCURRENCY = 32
PROCESSES = 4
TRAININGS = 10
MAX_SECONDS = 120


def test_every_prediction_is_right_for_the_version_it_names(start_server):
    srv = start_server(workers=4)
    result = reliability_load.run(srv.url, REQUESTS, CONCURRENCY, PROCESSES, TRAININGS,
                                  MAX_SECONDS)
    srv.stop()
    verdict = reliability_load.verify(srv.store, result.answers)
    print("\n" + "\n".join(reliability_load.report(result, verdict)))
    mismatched, versions_answered, corrupt = verdict
    assert result.errors == {}, "connection errors"
    assert result.statuses == {200: REQUESTS}
    assert result.jobs["succeeded"] >= TRAININGS and set(result.jobs) == {"succeeded"}
    assert versions_answered >= 2, "the readers never saw a new version"
    assert mismatched == [] and corrupt == []
    stored = {meta["version"] for meta in FileStore(srv.store).versions("load")}
    assert set(result.versions_saved) <= stored
