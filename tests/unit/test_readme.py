"""The README's tables and endpoint list match the code."""

import re

from service import create_app
from service.settings import Settings

from ..readme import section, table_rows


def readme_default(value):
    """Return a setting's default as the configuration table writes it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_configuration_table_lists_every_setting_with_its_default():
    rows = {cells[0].strip("`"): cells[1].strip("`") for cells in table_rows("Configuration")}
    expected = {f"NNSERVE_{name.upper()}": readme_default(field.default)
                for name, field in Settings.model_fields.items()}
    assert {k: v for k, v in rows.items() if k.startswith("NNSERVE_")} == expected


def test_configuration_table_describes_each_setting_as_its_docstring():
    rows = {cells[0].strip("`"): cells[2] for cells in table_rows("Configuration")}
    for name, field in Settings.model_fields.items():
        assert rows[f"NNSERVE_{name.upper()}"] == field.description


def test_every_gunicorn_variable_is_documented():
    source = open("service/gunicorn_conf.py").read()
    used = set(re.findall(r"os\.environ(?:\.get|\.setdefault)\(\s*[\"']([A-Z_]+)", source))
    documented = {cells[0].strip("`") for cells in table_rows("Configuration")}
    assert used and used <= documented


def test_every_route_has_a_row_and_a_curl_example(tmp_path):
    app = create_app(Settings(store_dir=tmp_path, run_jobs=False))
    api = section("API")
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert f"`{method} {path}`" in api, f"{method} {path} has no row in the README"
        example = re.sub(r"\\\{\w+\\\}", '[^ "]+', re.escape(path))
        assert re.search(r"curl [^\n]*\$U" + example + r'[?"\s]', api), f"no curl for {path}"
    app.extensions["nnserve"].stop()
