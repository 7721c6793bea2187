# syntax=docker/dockerfile:1
# The gateway's image: the package and its hash-pinned dependencies (requirements.lock) in a virtual
# environment, run by a numeric non-root user, with its keys, secret and certificates on the /data volume.
#
#   docker build -t claude-code-api .
#   docker run -d -p 8000:8000 -p 8443:8443 -v claude-code-api-data:/data claude-code-api
#
# BASE_IMAGE may be any Debian-like image whose `python3` (3.11+) has `venv` and that has `useradd`.
# Behind a TLS-intercepting proxy, hand pip its CA bundle as a build secret; it is read, never stored:
#   docker build --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt -t claude-code-api .
# No certificate, key or secret goes into a layer: they are written into /data at first start.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- dependencies: rebuilt only when requirements.lock changes --------------------------------------
FROM ${BASE_IMAGE} AS dependencies

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# tini becomes PID 1: it hands `docker stop`'s SIGTERM to the server even while the server is still
# starting (PID 1 ignores signals it has no handler for) and reaps orphaned processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# --only-binary: every pinned release ships wheels, so the image needs no compiler.
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

# --- the package, built into a wheel and checked against the dependencies ----------------------------
FROM dependencies AS package

COPY pyproject.toml README.md /tmp/package/
COPY src /tmp/package/src
# `pip check` fails the build when requirements.lock misses a dependency pyproject.toml gained.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && /opt/venv/bin/pip wheel --no-deps --wheel-dir /tmp/wheels /tmp/package \
    && /opt/venv/bin/pip install --no-deps /tmp/wheels/*.whl \
    && /opt/venv/bin/pip check

# --- the image: the dependencies' layers (~550 MB, most of it Claude Code's executable) stay the same
# from one code change to the next; the package adds about 1 MB on top ---------------------------------
FROM dependencies

LABEL org.opencontainers.image.title="claude-code-api" \
      org.opencontainers.image.description="An OpenAI-compatible API gateway in front of Claude Code" \
      org.opencontainers.image.licenses="MIT"

# A fixed, numeric uid: Kubernetes' runAsNonRoot can check it, and volume ownership is predictable.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown 10001:10001 /data \
    && chmod 0700 /data

COPY --from=package /tmp/wheels /tmp/wheels
RUN /opt/venv/bin/pip install --no-deps --no-index /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels
COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint

# HOST: a container is reached through its network interface, not its loopback.
ENV PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

VOLUME ["/data"]
EXPOSE 8000 8443
USER 10001:10001
WORKDIR /home/app

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v1/health' % os.environ.get('PORT', '8000'), timeout=4)"]

# tini passes SIGTERM on to `serve`, which finishes or cancels in-flight requests and exits 0; `-e 143`
# also reports 0 for a server stopped by SIGTERM before it could install its handler.
# The entrypoint writes the admin site's self-signed certificate when none is there, then execs the command.
ENTRYPOINT ["tini", "-s", "-e", "143", "--", "docker-entrypoint"]
CMD ["claude-code-api", "serve"]
