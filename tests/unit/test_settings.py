"""Settings refuse values that would break the service."""

import pytest
from pydantic import ValidationError

from service.settings import Settings


@pytest.mark.parametrize("value", ["inf", "nan", "0", "59", "1e20"])
def test_job_retention_must_be_a_sane_duration(monkeypatch, value):
    monkeypatch.setenv("NNSERVE_JOB_RETENTION_S", value)
    with pytest.raises(ValidationError, match="job_retention_s"):
        Settings()
