# nnserve: gunicorn serving service:create_app() on port 8000, models in a volume.
#
#   docker build -t nnserve .
#   docker run -p 8000:8000 -v nnserve-models:/app/model_store nnserve
#
# Behind a TLS-intercepting proxy or with a package mirror (BuildKit):
#   docker build --build-arg PIP_INDEX_URL=https://mirror.example/simple \
#     --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt -t nnserve .
# The CA bundle is mounted only while pip runs in the builder stage: it is in
# no layer of either stage.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG PIP_INDEX_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src

# Dependencies first, read from pyproject.toml, so that an edit of service/
# reuses this layer.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip_ca \
    python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); print(*p["build-system"]["requires"], *p["project"]["dependencies"], sep="\n")' > /tmp/requirements.txt \
    && if [ -z "$PIP_INDEX_URL" ]; then unset PIP_INDEX_URL; fi \
    && if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

COPY README.md ./
COPY service/ service/
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM ${BASE_IMAGE}
# A home directory, for tools that expect one (gunicorn's control socket is disabled).
RUN groupadd --system --gid 10001 nnserve \
    && useradd --system --no-log-init --uid 10001 --gid nnserve --create-home nnserve
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    NNSERVE_STORE_DIR=/app/model_store
WORKDIR /app
RUN mkdir model_store && chown 10001:10001 model_store
USER 10001:10001
VOLUME ["/app/model_store"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=2)"]
CMD ["nnserve", "serve"]
