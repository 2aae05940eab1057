# syntax=docker/dockerfile:1
# The flowrun-operator image: `flowrun operator` on a slim Python, as a non-root user.
#
#   docker build -t flowrun-operator:0.1.0 .
#
# Stage 1 builds the wheel and installs it with its dependencies into a venv; stage 2 copies only
# that venv onto a fresh slim base, so no compiler, build backend or source tree is shipped.
# The same image runs the operator, the Dask scheduler and workers and users' flow code, so it has
# no ENTRYPOINT: a Pod's args (dask-kubernetes sets only args) are the command.
# tests/packaging/test_image.py replays stage 1's RUN steps on the host (no Docker engine needed);
# `flowrun dev image` builds it without Docker or a registry (base: a local Debian with Python,
# pip offline from a local wheelhouse through the PIP_* build arguments below).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# Unset (the default), pip uses its index; an offline build points them at a wheelhouse.
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip wheel --no-deps --wheel-dir /dist .
RUN python -m venv /opt/flowrun \
 && /opt/flowrun/bin/pip install /dist/*.whl \
 && /opt/flowrun/bin/flowrun --help > /dev/null
# distributed 2026.8 ships only `dask scheduler`/`dask worker`; dask-kubernetes runs the old names.
# hadolint ignore=SC2016
RUN for role in scheduler worker; do \
      printf '#!/bin/sh\nexec "$(dirname "$0")/dask" %s "$@"\n' "$role" > "/opt/flowrun/bin/dask-$role" \
      && chmod 755 "/opt/flowrun/bin/dask-$role"; \
    done \
 && /opt/flowrun/bin/dask-scheduler --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/flowrun-operator/flowrun-operator
LABEL org.opencontainers.image.title="flowrun-operator" \
      org.opencontainers.image.description="A Kubernetes operator that runs Prefect-Core-style flows on ephemeral Dask clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}"
# A fixed numeric user, so that Kubernetes' runAsNonRoot can verify it (the chart sets 10001 too).
RUN groupadd --system --gid 10001 flowrun \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/flowrun --create-home \
      --shell /usr/sbin/nologin flowrun
COPY --from=build /opt/flowrun /opt/flowrun
ENV PATH=/opt/flowrun/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/flowrun
# Liveness (kopf /healthz) and Prometheus metrics, when enabled by flags.
EXPOSE 8080 9090
CMD ["flowrun", "operator"]

# The dask-kubernetes operator (the chart's daskOperator.enabled), from the same venv, so that its
# kopf and dask-kubernetes are the versions flowrun is tested with:
#   docker build --target dask-operator -t flowrun-dask-operator:0.1.0 .
# Its chart sets only args (kopf's flags), hence kopf as the ENTRYPOINT here.
FROM runtime AS dask-operator
ENTRYPOINT ["kopf", "run", "-m", "dask_kubernetes.operator.controller"]
CMD ["--all-namespaces"]

# The default target: the flowrun operator image.
FROM runtime
