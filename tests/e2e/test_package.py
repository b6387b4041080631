"""The package as a user installs it: a wheel of this tree, installed (not editable) with its
dependencies into a fresh virtual environment, serving from an empty folder elsewhere."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from .server import ROOT, free_port

pytestmark = pytest.mark.e2e
# The dependencies' wheels, kept between runs (pip's own cache keeps downloads, not an
# installable set): fetched once per set of pinned ranges, so a rerun costs an install.
WHEELS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nnserve-tests"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]


def _build_wheel(tmp_path):
    """Return the folder holding a wheel built from a copy of this tree (its sources as they
    are now, none of its venvs or stores)."""
    src = tmp_path / "nnserve-src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "service", src / "service",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    return out


def _dependency_wheels(dist):
    """Return the folder of wheels of every dependency the built wheel declares."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    folder = WHEELS / hashlib.sha256("\n".join(sorted(deps)).encode()).hexdigest()[:16]
    if not folder.is_dir():
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        wheel = next(dist.glob("nnserve-*.whl"))
        subprocess.run([*PIP, "wheel", "-w", str(partial), str(wheel)], check=True,
                       capture_output=True, timeout=600)
        partial.replace(folder)
    return folder


def _install(tmp_path):
    """Return the bin folder of a fresh venv with nnserve installed from its wheel."""
    dist = _build_wheel(tmp_path)
    deps = _dependency_wheels(dist)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    # The installed files are byte-compiled as they are first imported (--no-compile saves
    # most of the install's time); nothing else differs from `pip install nnserve`.
    subprocess.run([*PIP, "--python", str(venv / "bin" / "python"), "install", "--no-compile",
                    "--no-index", "--find-links", str(dist), "--find-links", str(deps),
                    "nnserve"], check=True, capture_output=True, timeout=600)
    return venv / "bin"


def _serve(bin_dir, cwd, port):
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), "PORT": str(port),
           "WEB_CONCURRENCY": "2"}  # nothing of this session's: no NNSERVE_*, no PYTHONPATH
    log = open(cwd.parent / "serve.log", "wb")  # closed with the server
    proc = subprocess.Popen([str(bin_dir / "nnserve"), "serve"], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _wait_ready(proc, url, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text(errors="replace")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout} s:\n{log_path.read_text(errors='replace')}")


def test_a_wheel_installed_in_a_fresh_venv_serves_from_an_empty_folder(tmp_path):
    """It failed: "no gunicorn configuration at gunicorn.conf.py; run from the project
    folder". The configuration, templates and static files are part of the package."""
    bin_dir = _install(tmp_path)
    found = subprocess.run([str(bin_dir / "python"), "-c",
                            "import service; print(service.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert found.stdout.startswith(str(tmp_path / "venv" / "lib"))  # not this tree's
    here = tmp_path / "empty"
    here.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc, log = _serve(bin_dir, here, port)
    try:
        _wait_ready(proc, url, tmp_path / "serve.log")
        r = requests.post(f"{url}/v1/trainings", params={"wait": 30}, timeout=40,
                          json={"model": "xor", "dataset": {"kind": "xor"},
                                "training": {"epochs": 300, "starts": 1}})
        assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
        r = requests.post(f"{url}/v1/models/xor/predict", json={"x1": 0.1, "x2": 0.9}, timeout=10)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert (here / "model_store" / "xor" / "1.npz").is_file()  # ./model_store by default
        page = requests.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "nnserve dashboard" in page.text
        assert requests.get(f"{url}/static/dashboard.js", timeout=10).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own session: its master and workers
        proc.wait(30)
        log.close()
