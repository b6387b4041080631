"""The request schemas' choices are the tables that implement them: one source of truth."""

from typing import get_args

import pytest

from service.jobs import STATUSES
from service.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from service.nn.datasets import DATASETS
from service.nn.losses import LOSSES
from service.nn.optimizers import OPTIMIZERS
from service.nn.training import DTYPES
from service.schemas import (
    DATA_SPECS,
    Activation,
    Dataset,
    Dtype,
    JobStatus,
    Loss,
    Optimizer,
    OutputActivation,
)


@pytest.mark.parametrize(("choice", "table"), [
    (Activation, ACTIVATIONS), (OutputActivation, OUTPUT_ACTIVATIONS), (Optimizer, OPTIMIZERS),
    (Loss, LOSSES), (Dtype, DTYPES), (JobStatus, STATUSES),
])
def test_each_choice_is_its_tables_keys_in_order(choice, table):
    assert get_args(choice) == tuple(table)


def test_the_data_set_kinds_are_the_generators_and_the_users_points():
    assert set(DATA_SPECS) == set(DATASETS) | {"points"}
    members = get_args(get_args(Dataset)[0])
    assert set(members) == set(DATA_SPECS.values())
    for kind, spec in DATA_SPECS.items():
        assert get_args(spec.model_fields["kind"].annotation) == (kind,)
