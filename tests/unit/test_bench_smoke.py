"""The benchmarks run end to end on a tiny plan so that they cannot rot. No timing is asserted.

PyTorch and scikit-learn are optional here (their rows say "skipped" without them);
`make bench` requires them.
"""

import json

import numpy as np
import pytest

from benchmarks import mlserver, oip, peers, report
from benchmarks.__main__ import run
from benchmarks.measure import SMOKE, Row, has
from service.nn import datasets
from service.nn.network import Architecture, init_params
from service.nn.training import TrainingConfig, fit

IN_PROCESS = ("training", "sweeps", "convergence", "generalisation", "scaling", "store",
              "snapshots")


def test_in_process_sections_run_and_write_their_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    rows = run(SMOKE, IN_PROCESS, out, echo=lambda *_: None)
    assert {row.section for row in rows} == set(IN_PROCESS)
    judged = [row for row in rows if row.ok is not None]
    assert judged and all(row.target for row in judged)
    assert all(row.value is not None for row in rows if "skipped" not in row.note)
    text = out.read_text()
    for heading in ("## Machine", "## Summary", "## Training", "## Store", report.KEEP):
        assert heading in text
    assert "NumPy" in text and "CPU" in text


def test_rewriting_results_keeps_the_notes_below_the_marker(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# old table\n{report.KEEP}\n## Profiles\nbefore 44 us, after 37 us\n")
    row = Row("store", "cold load", 0.9, "ms", 0.8, 1.1, target="<= 2 ms", ok=True)
    report.write(out, report.markdown([row], [("CPU", "test")], SMOKE, "now", 0.1, "0 0 0"))
    text = out.read_text()
    assert "# old table" not in text and "| cold load | 0.900 ms | 0.800-1.10 |" in text
    assert text.endswith(f"{report.KEEP}\n## Profiles\nbefore 44 us, after 37 us\n")


@pytest.mark.parametrize("make", [datasets.xor, lambda: datasets.linear(100, 3)])
def test_the_floor_computes_exactly_what_fit_computes(make):
    x, y = make()
    config = TrainingConfig(optimizer="sgd", loss="mse", learning_rate=0.5, l2=0.0, epochs=200,
                            starts=1, seed=4)
    theta0 = init_params(Architecture(), np.random.default_rng(4))["theta"]
    expected = fit(Architecture(), x, y, config).params["theta"]
    np.testing.assert_allclose(peers.floor_fit(x, y, theta0, 200, 0.5), expected, atol=1e-12)
    if has("torch"):
        net = peers.torch_fit(peers.torch_net(theta0), x, y, 200, 0.5)
        np.testing.assert_allclose(peers.torch_theta(net), expected, atol=1e-10)


@pytest.mark.e2e
def test_serving_section_runs_against_real_gunicorn():
    rows = run(SMOKE, ("serving",), None, echo=lambda *_: None)
    by_name = {row.name.split(" (")[0]: row for row in rows}
    fresh = next(row for name, row in by_name.items() if name.startswith("new version"))
    assert fresh.ok, fresh  # a correctness check: the very next request sees the new version
    paired = next(row for name, row in by_name.items() if name.startswith("1-point predict /"))
    assert paired.low <= paired.value <= paired.high and paired.target == ">= 0.8x"
    assert all("server CPU" in by_name[f"{name} at concurrency 16"].ratio
               for name in ("healthz", "predict"))
    assert all(row.value is not None and row.value > 0 for row in rows)


@pytest.mark.e2e
def test_hosts_section_runs_two_hosts_on_a_private_postgresql():
    rows = run(SMOKE, ("hosts",), None, echo=lambda *_: None)
    fresh = [row for row in rows if row.name.startswith("version uploaded to B")]
    # Served at all (within _served_after's 10 s: a finite figure); whether within the
    # target's 1 s is the benchmark's judgement, not a test's: a loaded machine misses it.
    assert len(fresh) == 2, rows
    assert all(row.value is not None and 0 < row.value < float("inf") for row in rows)
    assert {row.target for row in rows if row.ok is not None} >= {">= 0.95x", "<= 5 ms"}


@pytest.mark.e2e
def test_oip_section_runs_against_nnserve_and_mlserver():
    """Beside MLServer when its venv is built (make bench), else the one row says skipped."""
    rows = run(SMOKE, ("inference",), None, echo=lambda *_: None)
    if not mlserver.installed():
        assert len(rows) == 1 and "skipped" in rows[0].note
        return
    names = [row.name for row in rows]
    for n in oip.sizes(SMOKE):
        for who in ("nnserve /v1", "nnserve /v2", "MLServer /v2"):
            assert any(name.startswith(f"{who}, {n:,} points") for name in names), (who, n)
    judged = [row for row in rows if row.ok is not None]
    assert len(judged) == 4 * len(oip.sizes(SMOKE)) + 1
    assert all(row.value is not None and row.value > 0 for row in rows)
    assert rows[0].value == 1.0  # MLServer's model learned XOR: the comparison is fair


def test_v2_bench_bodies_are_what_the_protocol_reads():
    x = oip.points(3)
    body = json.loads(oip.v2_body(x))
    assert body["inputs"][0]["shape"] == [3, 2] and len(body["inputs"][0]["data"]) == 6
    raw, length = oip.binary_body(x)
    header = json.loads(raw[:length])
    assert header["inputs"][0]["parameters"]["binary_data_size"] == len(raw) - length == 24


def test_the_claim_latency_benchmark_runs_on_postgresql(pg_cluster):
    from benchmarks import jobs

    rows = jobs.claim_latency(pg_cluster, SMOKE)
    assert [row.section for row in rows] == ["jobs"] * 3
    assert all(row.value is not None and row.value > 0 for row in rows)
