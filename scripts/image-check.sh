#!/usr/bin/env bash
# Prove the Dockerfile: build it with podman, run it, ask it one question over HTTP, print the
# answer and the timings, and remove the container and image it built.
#
#   sudo bash scripts/image-check.sh            # keeps the local Debian base for the next run
#   sudo bash scripts/image-check.sh --clean    # also removes the base (and its storage)
#
# No registry is needed: the base image the Dockerfile starts FROM is built here from Debian's
# mirror with debootstrap (the route for machines behind a firewall too). Needs root and
#   apt-get install -y --no-install-recommends podman buildah runc debootstrap uidmap \
#       slirp4netns fuse-overlayfs
# podman runs with settings of its own (vfs storage, runc, cgroupfs, modest ulimits) kept in
# $CONCLAVE_IMAGE_WORK, without touching /etc/containers.
#
# Where outbound HTTPS passes a TLS-inspecting proxy, the host's CA bundle is mounted into the
# build's RUN steps (with a pip.conf naming it) for the build only: nothing site-specific lands
# in the Dockerfile or in the image's layers. Set CONCLAVE_BUILD_CA=/path/bundle.pem to choose
# another bundle, or CONCLAVE_BUILD_CA= (empty) to hand none.
#
# Environment: CONCLAVE_IMAGE_WORK (default /var/tmp/conclave-image-check), CONCLAVE_IMAGE_PORT
# (host port, default 18080), DEBIAN_MIRROR (default http://deb.debian.org/debian),
# CONCLAVE_BUILD_NICE (default 10: the llama.cpp compile takes minutes on 2 cores).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${CONCLAVE_IMAGE_WORK:-/var/tmp/conclave-image-check}"
PORT="${CONCLAVE_IMAGE_PORT:-18080}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NICE="${CONCLAVE_BUILD_NICE:-10}"
CA_BUNDLE="${CONCLAVE_BUILD_CA-/etc/ssl/certs/ca-certificates.crt}"
BASE=localhost/conclave-base:bookworm
IMAGE=localhost/conclave:image-check
CONTAINER=conclave-image-check
CLEAN_BASE=0
[[ "${1:-}" == "--clean" ]] && CLEAN_BASE=1

for tool in podman buildah debootstrap curl python3; do
    command -v "$tool" >/dev/null || {
        echo "image-check: $tool is missing; install podman buildah runc debootstrap uidmap" \
            "slirp4netns fuse-overlayfs curl (see the top of this script)" >&2
        exit 2
    }
done
[[ $EUID -eq 0 ]] || { echo "image-check: run as root (debootstrap and rootful podman)" >&2; exit 2; }

# --- podman's settings, our own files ---------------------------------------------------------
mkdir -p "$WORK/storage" "$WORK/run"
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
# crun fails here (cgroups v1/hybrid, setrlimit of nofile=1048576 refused): runc, cgroupfs and
# limits the host grants.
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf" CONTAINERS_CONF="$WORK/containers.conf"

now() { date +%s.%N; }
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

cleanup() {
    podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
    podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    # An interrupted build leaves its working containers behind (GBs on vfs): all in our storage.
    buildah rm --all >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true  # the build stage's untagged layers
    if [[ $CLEAN_BASE -eq 1 ]]; then
        podman rmi -f "$BASE" >/dev/null 2>&1 || true
        podman system reset -f >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# --- the base: Debian bookworm with Python, from the mirror, when missing ---------------------
if ! podman image exists "$BASE"; then
    echo "image-check: building the base $BASE with debootstrap from $MIRROR"
    t0=$(now)
    rootfs="$WORK/rootfs"
    rm -rf "$rootfs"
    # python-is-python3: the Dockerfile says `python`, as the official python image has it.
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3 \
        bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        tail -20 "$WORK/debootstrap.log" >&2
        exit 1
    }
    # pip installs system-wide, as in the official image.
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$BASE" >/dev/null
    rm -rf "$rootfs"
    echo "image-check: base built in $(seconds "$t0" "$(now)") s"
fi

# --- the image: the Dockerfile as published --------------------------------------------------
build_mounts=()
if [[ -n "$CA_BUNDLE" ]]; then
    [[ -r "$CA_BUNDLE" ]] || { echo "image-check: CA bundle $CA_BUNDLE unreadable" >&2; exit 2; }
    printf '[global]\ncert = /run/build-ca.pem\n' >"$WORK/pip.conf"
    build_mounts=(-v "$CA_BUNDLE:/run/build-ca.pem:ro" -v "$WORK/pip.conf:/etc/pip.conf:ro")
fi
echo "image-check: building $IMAGE (llama.cpp compiles: minutes)"
t0=$(now)
# --format docker keeps HEALTHCHECK (the OCI format drops it).
nice -n "$NICE" podman build --format docker --build-arg "PYTHON_IMAGE=$BASE" \
    "${build_mounts[@]}" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log" >&2
    echo "image-check: the build failed; the whole log is $WORK/build.log" >&2
    exit 1
}
build_s=$(seconds "$t0" "$(now)")
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")

# --- run it and ask one question -------------------------------------------------------------
t0=$(now)
podman run -d --name "$CONTAINER" -p "127.0.0.1:$PORT:80" "$IMAGE" >/dev/null
health_s=""
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
        health_s=$(seconds "$t0" "$(now)")
        break
    fi
    if [[ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" != "true" ]]; then
        podman logs "$CONTAINER" >&2
        echo "image-check: the container stopped before it served" >&2
        exit 1
    fi
    sleep 0.2
done
[[ -n "$health_s" ]] || { podman logs "$CONTAINER" >&2; echo "image-check: no /health in 120 s" >&2; exit 1; }

question='What is the capital of France? Answer in one word.'
body=$(python3 -c 'import json, sys; print(json.dumps({"model": "default",
    "messages": [{"role": "user", "content": sys.argv[1]}]}))' "$question")
response=$(curl -sS --max-time 600 -w '\n%{http_code}' -H 'Content-Type: application/json' \
    -d "$body" "http://127.0.0.1:$PORT/v1/chat/completions")
answer_s=$(seconds "$t0" "$(now)")
status=${response##*$'\n'}
payload=${response%$'\n'*}
if [[ "$status" != "200" ]]; then
    echo "image-check: HTTP $status: $payload" >&2
    podman logs "$CONTAINER" 2>&1 | tail -20 >&2
    exit 1
fi
answer=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])' <<<"$payload")
[[ -n "${answer//[[:space:]]/}" ]] || { echo "image-check: empty answer: $payload" >&2; exit 1; }

echo "question: $question"
echo "answer:   $answer"
echo "image size:            $(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e9:.2f} GB')" "$size_bytes")"
echo "build time:            $build_s s"
echo "run to /health:        $health_s s"
echo "run to first answer:   $answer_s s"
