# syntax=docker/dockerfile:1
# conclave's HTTP service with the embedded models inside: no key and no network needed to
# answer with the default preset. Serves on port 80 as Flare AI Consensus's image does, as a
# non-root user (the python binary holds CAP_NET_BIND_SERVICE for that one port).
#
#   docker build -t conclave .
#   docker run --rm -p 80:80 conclave                                   # the embedded preset
#   docker run --rm -p 80:80 -e OPENROUTER_API_KEY -e CONCLAVE_API_KEYS=... \
#       -v "$PWD/input.json:/config/input.json:ro" conclave --config /config/input.json
#
# Under `--security-opt no-new-privileges` file capabilities are ignored: then serve on 8080
# (`-e CONCLAVE_PORT=8080`) and publish `-p 80:8080`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: every dependency from the pinned, hashed lock; llama.cpp compiled here ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# The same steps as scripts/setup.sh. The lock changes rarely: its layer is cached on its own.
COPY requirements/runtime.lock requirements/packs.txt requirements/
# LLAVA_BUILD=OFF skips llama.cpp's multimodal tool, which conclave does not use.
# GGML_NATIVE=OFF: an image runs on other CPUs than the one that built it, so llama.cpp is built
# for the x86-64-v3 baseline (AVX2, FMA, F16C) instead of -march=native. A native build crashed
# at the first token on a virtual machine whose CPU advertises AMX that its kernel does not
# grant (`ldtilecfg`: a general protection fault in libggml-cpu).
RUN CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" \
    pip install --require-hashes -r requirements/runtime.lock
RUN pip install --no-deps --require-hashes -r requirements/packs.txt
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install --no-deps .

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# libgomp: llama.cpp's OpenMP threads; libcap2-bin only to grant the port-80 capability.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
RUN setcap cap_net_bind_service=+ep "$(readlink -f /opt/venv/bin/python)" \
    && apt-get purge -y libcap2-bin && apt-get autoremove -y \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/conclave conclave

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CONCLAVE_HOME=/opt/conclave \
    CONCLAVE_HOST=0.0.0.0 \
    CONCLAVE_PORT=80

# Join and verify (sha256) the embedded models now, so that a start costs one `stat`; the
# runtime user only reads them.
RUN python -c "from conclave.providers.packs import DEFAULT_PACKS, resolve_pack; \
from conclave.settings import Settings; \
[print(resolve_pack(name, Settings().models_dir)) for name in DEFAULT_PACKS]"

USER conclave
WORKDIR /home/conclave
EXPOSE 80
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['CONCLAVE_PORT']}/health\", timeout=4)"]
ENTRYPOINT ["conclave", "serve"]
