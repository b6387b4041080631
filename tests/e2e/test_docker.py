"""The Docker image for real: build, run on a volume, train, predict, restart.

Needs a Docker engine that builds with BuildKit and the base image that
.ci/docker-setup makes (no registry is reachable on CI); skips, saying why,
when either is missing. pip in the build uses this machine's package index and
CA bundle, read from its pip configuration.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("NNSERVE_DOCKER_BASE_IMAGE", "nnserve-base:bookworm")
IMAGE = "nnserve:e2e"
LABEL = "nnserve.test=e2e"
XOR_POINTS = [[0.1, 0.9], [0.5, 0.5]]
XOR_LABELS = [1, 0]
# pip config list's sections, weakest first: [global], [install], PIP_* variables.
PIP_SECTIONS = ("global", "install", ":env:")

pytestmark = pytest.mark.e2e


def run(*args, check=True, timeout=60, env=None):
    """Return the finished process of a command, failing the test if it failed."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def buildkit_client():
    """Return a docker client that can build with BuildKit, or None.

    With the buildx plugin any client can; clients before 23.0 have BuildKit
    built in (DOCKER_BUILDKIT=1), as Debian's docker.io does.
    """
    for exe in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]):
        if not exe or not os.access(exe, os.X_OK):
            continue
        if run(exe, "buildx", "version", check=False).returncode == 0:
            return exe
        version = run(exe, "version", "--format", "{{.Client.Version}}", check=False).stdout
        if version.split(".")[0].isdigit() and int(version.split(".")[0]) < 23:
            return exe
    return None


def pip_index_and_cert():
    """Return the index URL and CA bundle that this machine's pip uses, each or None."""
    entries = [
        line.partition("=")
        for line in run(sys.executable, "-m", "pip", "config", "list").stdout.splitlines()
    ]
    settings = {}
    for section in PIP_SECTIONS:
        for key, _, value in entries:
            where, _, name = key.rpartition(".")
            if where == section:
                settings[name] = value.strip("'\"")
    index, cert = settings.get("index-url"), settings.get("cert")
    index = index if index and index.startswith(("http://", "https://")) else None
    cert = cert if cert and Path(cert).is_file() else None
    return index, cert


@pytest.fixture(scope="module")
def docker():
    """Return the docker client to use, skipping when no engine answers."""
    exe = buildkit_client()
    if exe is None:
        pytest.skip("no docker client that builds with BuildKit (run .ci/docker-setup)")
    server = run(exe, "version", "--format", "{{.Server.Version}}", check=False)
    if server.returncode != 0:
        pytest.skip(f"no Docker engine (run .ci/docker-setup): {server.stderr.strip()}")
    if run(exe, "image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"no base image {BASE_IMAGE} (run .ci/docker-setup)")
    return exe


@pytest.fixture(scope="module")
def image(docker):
    """Build the image from the work tree and return its tag: one of this run's own, so a
    run from another tree on the same engine cannot swap the image under the tests."""
    tag = f"{IMAGE}-{uuid.uuid4().hex[:8]}"
    index, cert = pip_index_and_cert()
    args = [docker, "build", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--label", LABEL]
    if index:
        args += ["--build-arg", f"PIP_INDEX_URL={index}"]
    if cert:
        args += ["--secret", f"id=pip_ca,src={cert}"]
    run(*args, "-t", tag, str(ROOT), timeout=900, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    yield tag
    # The tag, and earlier builds left untagged; the build cache stays for the next run.
    run(docker, "image", "rm", tag, check=False)
    run(docker, "image", "prune", "--force", "--filter", f"label={LABEL}", check=False)


@pytest.fixture
def volume(docker):
    """Return the name of a new volume for the model store, removed afterwards."""
    name = run(docker, "volume", "create", "--label", LABEL).stdout.strip()
    yield name
    run(docker, "volume", "rm", "--force", name, check=False)


@pytest.fixture
def start(docker, image, volume):
    """Return a function that starts a container on the volume and returns its name."""
    names = []

    def start_container():
        name = f"nnserve-e2e-{uuid.uuid4().hex[:8]}"
        names.append(name)
        run(
            docker, "run", "--detach", "--name", name, "--label", LABEL,
            "--publish", "127.0.0.1::8000",
            "--volume", f"{volume}:/app/model_store",
            "--health-interval", "1s", "--health-timeout", "2s", "--health-retries", "3",
            image,
        )  # fmt: skip
        wait_until_ready(docker, name)
        return name

    yield start_container
    for name in names:
        run(docker, "rm", "--force", "--volumes", name, check=False)


def base_url(docker, name):
    """Return the URL of the port that docker published for the container (new at each start)."""
    address = run(docker, "port", name, "8000/tcp").stdout.split()[0]
    return f"http://{address}"


def wait_until_ready(docker, name, timeout=60):
    """Wait until /readyz answers 200, failing with the container's log if it stops."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run(docker, "inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if state != "true":
            pytest.fail(f"container stopped:\n{container_log(docker, name)}")
        try:
            if requests.get(f"{base_url(docker, name)}/readyz", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    pytest.fail(f"not ready in {timeout} s:\n{container_log(docker, name)}")


def container_log(docker, name):
    """Return what the container printed."""
    proc = run(docker, "logs", name, check=False)
    return proc.stdout + proc.stderr


def predict(url):
    """Return the version and the labels that the xor-demo model gives XOR_POINTS."""
    response = requests.post(
        f"{url}/v1/models/xor-demo/predict", json={"points": XOR_POINTS}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["version"], [p["label"] for p in body["predictions"]]


def listed_models(url):
    """Return (name, latest version) of each model that GET /v1/models lists."""
    response = requests.get(f"{url}/v1/models", timeout=10)
    assert response.status_code == 200, response.text
    return [(m["name"], m["latest"]) for m in response.json()["models"]]


def test_starts_cleanly_as_non_root_and_turns_healthy(docker, start):
    name = start()
    # Uid: real, effective, saved and filesystem uid of gunicorn's master, PID 1.
    status = run(docker, "exec", name, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert "0" not in uids
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline and health != "healthy":
        time.sleep(0.5)
        health = run(docker, "inspect", "--format", "{{.State.Health.Status}}", name).stdout
        health = health.strip()
    assert health == "healthy"
    assert "[ERROR]" not in container_log(docker, name)


def test_trained_model_outlives_restart_and_container(docker, start):
    name = start()
    url = base_url(docker, name)
    training = {"model": "xor-demo", "dataset": {"kind": "xor"}}
    response = requests.post(f"{url}/v1/trainings?wait=30", json=training, timeout=60)
    assert response.status_code in (200, 201, 202), response.text
    job = response.json()
    assert job["status"] == "succeeded", job
    version = job["result"]["version"]
    assert job["result"]["name"] == "xor-demo"
    assert predict(url) == (version, XOR_LABELS)

    run(docker, "restart", name, timeout=120)
    wait_until_ready(docker, name)
    url = base_url(docker, name)
    assert listed_models(url) == [("xor-demo", version)]
    assert predict(url) == (version, XOR_LABELS)

    # A new container has a new writable layer: the model is in the volume.
    run(docker, "rm", "--force", name)
    url = base_url(docker, start())
    assert listed_models(url) == [("xor-demo", version)]
    assert predict(url) == (version, XOR_LABELS)


COMPOSE_CI = ROOT / "tests" / "e2e" / "compose.ci.yaml"
SERVICES_IMAGE = "nnserve-ci-services:bookworm"


def compose_client(docker):
    """Return the command that runs docker compose (the plugin or docker-compose), or None."""
    if run(docker, "compose", "version", check=False).returncode == 0:
        return [docker, "compose"]
    return [shutil.which("docker-compose")] if shutil.which("docker-compose") else None


@pytest.fixture
def compose(docker, image):
    """Run compose.yaml (with CI's images, tests/e2e/compose.ci.yaml) on a free port; return
    (url of the load balancer, the function returning a replica's own URL)."""
    client = compose_client(docker)
    if client is None:
        pytest.skip("no docker compose (run .ci/docker-setup: apt-get install docker-compose)")
    if run(docker, "image", "inspect", SERVICES_IMAGE, check=False).returncode != 0:
        pytest.skip(f"no image {SERVICES_IMAGE} (run .ci/docker-setup)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NNSERVE_IMAGE": image, "NNSERVE_PORT": f"127.0.0.1:{port}",
           "POSTGRES_PASSWORD": uuid.uuid4().hex}
    command = [*client, "-p", f"nnserve-e2e-{uuid.uuid4().hex[:8]}",
               "-f", str(ROOT / "compose.yaml"), "-f", str(COMPOSE_CI)]

    def replica(name):
        return f"http://{run(*command, 'port', name, '8000', env=env).stdout.strip()}"

    try:
        run(*command, "up", "--detach", "--no-build", env=env, timeout=300)
        yield f"http://127.0.0.1:{port}", replica
    finally:
        logs = run(*command, "logs", "--no-color", env=env, check=False).stdout
        run(*command, "down", "--volumes", "--timeout", "10", env=env, check=False, timeout=120)
        print(logs[-5000:])


def served_by(url, timeout=90):
    """Return the replicas that answered /readyz through the load balancer, once both have."""
    seen, deadline = set(), time.monotonic() + timeout
    while len(seen) < 2 and time.monotonic() < deadline:
        try:
            r = requests.get(f"{url}/readyz", timeout=5)
            if r.status_code == 200:
                seen.add(r.headers["X-Served-By"])
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    return seen


def test_compose_runs_two_replicas_on_one_database_behind_one_port(compose):
    url, replica = compose
    assert served_by(url) == {"nnserve-a", "nnserve-b"}
    r = requests.post(f"{url}/v1/trainings", params={"wait": 30},
                      json={"model": "xor-demo", "dataset": {"kind": "xor"}}, timeout=60)
    assert r.status_code in (201, 202), r.text
    job = r.json()
    assert job["status"] == "succeeded", job
    trained_by = r.headers["X-Served-By"]
    for name in ("nnserve-a", "nnserve-b"):  # the job and its model are on both replicas
        seen = requests.get(f"{replica(name)}/v1/trainings/{job['id']}", timeout=10).json()
        assert (seen["status"], seen["result"]) == ("succeeded", job["result"])
        version, labels = predict(replica(name))
        assert (version, labels) == (job["result"]["version"], XOR_LABELS), (name, trained_by)
