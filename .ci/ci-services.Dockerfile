# PostgreSQL and HAProxy from Debian's packages, for compose.yaml in CI (no registry there):
# tests/e2e/compose.ci.yaml runs each with its own command. Built by .ci/docker-setup.
ARG BASE_IMAGE=nnserve-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       postgresql haproxy \
    && rm -rf /var/lib/apt/lists/*
