"""Settings refuse values that would break the service."""

import pytest
from pydantic import ValidationError

from service.settings import Settings, SettingsError, read_settings


@pytest.mark.parametrize("value", ["inf", "nan", "0", "59", "1e20"])
def test_job_retention_must_be_a_sane_duration(monkeypatch, value):
    monkeypatch.setenv("NNSERVE_JOB_RETENTION_S", value)
    with pytest.raises(ValidationError, match="job_retention_s"):
        Settings()


def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_must_be(monkeypatch):
    monkeypatch.setenv("NNSERVE_MAX_WAIT_S", "-1")
    monkeypatch.setenv("NNSERVE_CACHE_SIZE", "many")
    with pytest.raises(SettingsError) as caught:
        read_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "NNSERVE_MAX_WAIT_S='-1': input should be greater than or equal to 0" in message
    assert "NNSERVE_CACHE_SIZE='many': input should be a valid integer" in message
    assert "max_wait_s" not in message



@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_api_token_is_refused_not_taken_as_a_token(monkeypatch, token):
    monkeypatch.setenv("NNSERVE_API_TOKEN", token)  # `Bearer ` with nothing would pass it
    with pytest.raises(SettingsError) as caught:
        read_settings()
    assert str(caught.value) == ("NNSERVE_API_TOKEN: value error, must not be empty or blank"
                                 " (unset it for no authentication)")


@pytest.mark.parametrize("token", ["s3cret\n", " s3cret", "s3cret ", "s3\tcret", "s3\x7fcret"])
def test_a_token_no_header_can_carry_is_refused_at_start_up(monkeypatch, token):
    monkeypatch.setenv("NNSERVE_API_TOKEN", token)  # a secret file's newline: every client 401
    with pytest.raises(SettingsError) as caught:
        read_settings()
    assert str(caught.value).startswith("NNSERVE_API_TOKEN: value error, must not start or end"
                                        " with white space or hold a control character")
    assert "s3" not in str(caught.value)  # the secret is not printed


@pytest.mark.parametrize(("sent", "kept"), [("debug", "DEBUG"), ("Warning", "WARNING")])
def test_the_log_level_is_read_in_any_case(monkeypatch, sent, kept):
    monkeypatch.setenv("NNSERVE_LOG_LEVEL", sent)
    assert read_settings().log_level == kept


def test_an_unknown_log_level_stops_start_up_in_one_line(monkeypatch):
    monkeypatch.setenv("NNSERVE_LOG_LEVEL", "verbose")  # was a traceback in every worker
    with pytest.raises(SettingsError) as caught:
        read_settings()
    assert str(caught.value) == ("NNSERVE_LOG_LEVEL='verbose': input should be 'DEBUG', 'INFO',"
                                 " 'WARNING', 'ERROR' or 'CRITICAL'")


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "3601"])
def test_the_longest_wait_is_a_finite_hour_at_most(monkeypatch, value):
    monkeypatch.setenv("NNSERVE_MAX_WAIT_S", value)  # ?wait= would hold a thread for ever
    with pytest.raises(SettingsError) as caught:
        read_settings()
    assert str(caught.value).startswith(f"NNSERVE_MAX_WAIT_S='{value}': input should be")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
@pytest.mark.parametrize("field", [name for name, info in Settings.model_fields.items()
                                   if info.annotation is float])
def test_no_float_setting_takes_infinity_or_nan(monkeypatch, field, value):
    # An infinite limit or timeout reads as a number and acts as none (a job never timed out,
    # any work let through): a limit is lifted by a large finite value, said so.
    monkeypatch.setenv(f"NNSERVE_{field.upper()}", value)
    with pytest.raises(SettingsError) as caught:
        read_settings()
    assert str(caught.value).startswith(f"NNSERVE_{field.upper()}='{value}': input should be")
