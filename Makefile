# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
BENCH  := $(VENV)/.installed-bench
PEER   := .venv-mlserver

.PHONY: run test bench lint docker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

$(BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@ $(DEV) $(STAMP)

run: $(STAMP)
	$(BIN)/nnserve serve

test: $(DEV)
	$(BIN)/python -m pytest

# MLServer, the /v2 peer, has a venv of its own: its pins clash with the dev extra's.
$(PEER)/.installed: benchmarks/mlserver-requirements.txt
	$(PYTHON) -m venv $(PEER)
	$(PEER)/bin/pip install --quiet --upgrade pip
	$(PEER)/bin/pip install --quiet -r $<
	touch $@

bench: $(BENCH) $(PEER)/.installed
	@command -v wrk >/dev/null || echo "wrk not installed (apt-get install -y wrk): using the Python load client"
	$(BIN)/python -m benchmarks $(ARGS)

lint: $(DEV)
	$(BIN)/ruff check service tests benchmarks

# The Dockerfile mounts the CA bundle as a BuildKit secret; DOCKER=/usr/bin/docker picks
# a client with BuildKit built in where the default one lacks buildx.
DOCKER ?= docker
docker:
	DOCKER_BUILDKIT=1 $(DOCKER) build -t nnserve:latest .

clean:
	rm -rf $(VENV) $(PEER) .pytest_cache
