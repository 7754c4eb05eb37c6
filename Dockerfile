# One image for the four services and the operations commands (migrate, topics,
# keys, rules, retention, simulate): `chimera <command>`, chosen by CMD.
#
#   docker build -t chimera-monitor .
#   docker run --rm chimera-monitor --help
#   docker run --env-file deploy/compose/chimera.env chimera-monitor aggregator
#
# docker-compose.yml builds it once and runs every Chimera service from it
# (deploy/README.md). Dependencies come only from requirements.lock, pinned
# with hashes (`make lock` regenerates it from pyproject.toml).

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtual environment with the locked dependencies and the project ---
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
# Every requirement pinned with its hashes; wheels only (every locked package
# has a manylinux wheel for CPython 3.11, so no compiler is needed here).
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock
# The source goes to /app, where the runtime stage keeps it: the editable install
# points there, and so does the CLI's project root (deploy/rules, deploy/scenarios).
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY chimera ./chimera
COPY schemas ./schemas
COPY deploy/rules ./deploy/rules
COPY deploy/scenarios ./deploy/scenarios
COPY deploy/notifier ./deploy/notifier
RUN /opt/venv/bin/pip install --no-deps -e . \
 && /opt/venv/bin/chimera --help > /dev/null

# --- runtime: the slim base, the venv and the source, a non-root user ---
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 chimera \
 && useradd --system --uid 10001 --gid chimera --home-dir /home/chimera --create-home \
        --shell /usr/sbin/nologin chimera \
 && mkdir -p /var/lib/chimera/keys \
 && chown -R chimera:chimera /var/lib/chimera
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
# HTTP_HOST / METRICS_HOST: the services listen on 127.0.0.1 by default; in a
# container they must take connections from the other containers.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0
WORKDIR /app
USER chimera
# ingest's API (and its /metrics), then the aggregator's, the alerter's and the
# notifier's /metrics + /healthz.
EXPOSE 8000 9101 9102 9103
# GET /healthz on the service's own port: HTTP_PORT for ingest, METRICS_PORT for
# the others (docker-compose.yml sets the one that applies; 8000 without either).
# One-shot commands (migrate, topics, simulate) turn it off in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('HTTP_PORT') or os.environ.get('METRICS_PORT') or '8000'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["chimera"]
CMD ["ingest"]
