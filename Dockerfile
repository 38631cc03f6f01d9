# syntax=docker/dockerfile:1
#
# keysvc server image.
#
#   docker build -t keysvc:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 \
#     -v "$PWD/keysvc.toml:/etc/keysvc/keysvc.toml:ro" keysvc:0.1.0
#
# Both stages use the same base image, so the virtualenv built in the first one (whose
# interpreter symlinks point at /usr/local/bin/python3.11) runs unchanged in the second.
# Release builds pin the base by digest as well as by tag; resolve it with
#   docker buildx imagetools inspect python:3.11.14-slim-trixie
# and write it as  FROM python:3.11.14-slim-trixie@sha256:<digest>  in BOTH stages.
# base-digest: sha256:REPLACE_WITH_RELEASE_DIGEST

# ---- builder: wheels of the client and the server, installed into a venv --------------
FROM python:3.11.14-slim-trixie AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY clients/python/ clients/python/
COPY pyproject.toml README.md ./
COPY proto/ proto/
COPY keysvc/ keysvc/

# The client is built from this tree (listed first) so the server's dependency on
# keysvc-client never resolves to a package index; the install step is offline.
RUN python -m venv /opt/keysvc \
 && /opt/keysvc/bin/pip wheel --wheel-dir /wheels ./clients/python . \
 && /opt/keysvc/bin/pip install --no-index --find-links /wheels keysvc-client keysvc \
 && /opt/keysvc/bin/pip uninstall --yes pip setuptools \
 && /opt/keysvc/bin/keysvc --help > /dev/null

# ---- runtime --------------------------------------------------------------------------
FROM python:3.11.14-slim-trixie AS runtime

LABEL org.opencontainers.image.title="keysvc" \
      org.opencontainers.image.description="Field-level encryption and tokenization key service" \
      org.opencontainers.image.licenses="Apache-2.0"

# Unprivileged numeric user (the chart's podSecurityContext uses the same ids).
RUN groupadd --system --gid 10001 keysvc \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/keysvc \
      --no-create-home --shell /usr/sbin/nologin keysvc \
 && mkdir -p /etc/keysvc /var/lib/keysvc /run/keysvc/metrics \
 && chown 10001:10001 /var/lib/keysvc /run/keysvc/metrics \
 && chmod 0750 /var/lib/keysvc /run/keysvc/metrics

COPY --from=builder /opt/keysvc /opt/keysvc

ENV PATH="/opt/keysvc/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/run/keysvc/metrics

WORKDIR /var/lib/keysvc
USER 10001:10001

# gRPC API, plaintext health-only port, Prometheus /metrics.
EXPOSE 50051 50052 9090

# Exec form: keysvc is PID 1 and gets SIGTERM directly (graceful drain); no shell involved.
STOPSIGNAL SIGTERM
ENTRYPOINT ["keysvc"]
CMD ["serve", "--config", "/etc/keysvc/keysvc.toml"]
