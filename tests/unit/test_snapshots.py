"""Snapshots of a job's weights: bounded, self-describing, and the model they hold."""

import json

import numpy as np
import pytest

from service import snapshots
from service.jobs.records import MAX_SNAPSHOT_CHARS, snapshot_text
from service.nn.network import Architecture, count_params


def test_a_snapshot_holds_the_model_it_was_taken_of(trained):
    model, _, x, _ = trained
    snap = snapshots.snapshot(model.arch, model.params["theta"], 50)
    back = snapshots.model_of(json.loads(json.dumps(snap)))  # as a backend returns it
    assert snap["epoch"] == 50 and back.arch == model.arch
    np.testing.assert_allclose(back.params["theta"], model.params["theta"], rtol=1e-6)
    np.testing.assert_allclose(back.predict_proba(x), model.predict_proba(x), atol=1e-5)


def test_the_largest_snapshot_fits_the_backends_bound_and_a_larger_network_has_none():
    largest = Architecture((2, 1023, 1))  # 4093 weights
    assert count_params(largest) <= snapshots.MAX_PARAMS
    snap = snapshots.snapshot(largest, np.full(count_params(largest), -1.5e38), 7)
    assert len(snapshot_text(snap)) <= MAX_SNAPSHOT_CHARS
    wider = Architecture((2, 1024, 1))
    assert snapshots.snapshot(wider, np.ones(count_params(wider)), 1) is None


@pytest.mark.parametrize("snap", [
    {}, {"arch": {"layers": [2, 1]}, "theta": "!!"}, {"arch": {"layers": [2, 0]}, "theta": ""},
    {"arch": {"layers": [2, 1]}, "theta": "AAAA"},  # 3 bytes: not 3 float32 weights
    {"arch": {"layers": [2, 1]}, "theta": "AACAfwAAgH8AAIB/"},  # infinities
    {"arch": "x", "theta": "AAAA"}])
def test_a_record_that_is_no_snapshot_is_a_value_error(snap):
    with pytest.raises(ValueError):
        snapshots.model_of(snap)


def test_weights_beyond_float32_are_kept_as_float64_and_a_large_such_network_has_none():
    arch = Architecture((2, 4, 4, 1))
    theta = np.linspace(-1, 1, count_params(arch)) * 1e40  # a fit at a huge rate can end so
    snap = snapshots.snapshot(arch, theta, 3)
    assert snap["dtype"] == "<f8" and len(snapshot_text(snap)) <= MAX_SNAPSHOT_CHARS
    np.testing.assert_array_equal(snapshots.model_of(json.loads(json.dumps(snap))).params[
        "theta"], theta)
    assert "dtype" not in snapshots.snapshot(arch, theta / 1e40, 3)  # float32 when it fits
    half = Architecture((2, 511, 1))  # 2045 weights: float64 fits the bound
    big = np.full(count_params(half), 1e39)
    assert len(snapshot_text(snapshots.snapshot(half, big, 1))) <= MAX_SNAPSHOT_CHARS
    wide = Architecture((2, 1023, 1))
    assert snapshots.snapshot(wide, np.full(count_params(wide), 1e39), 1) is None
    with pytest.raises(ValueError):
        snapshots.model_of({**snap, "dtype": "<i8"})
