#!/usr/bin/env bash
# Prove the Dockerfile: build it with podman, check what the image holds, run it closed (no
# key: it must not serve) and with a key, ask it one question over HTTP, print the answer and
# the measurements, and remove the containers and the image it built.
#
#   sudo bash scripts/image-check.sh            # keeps the local Debian base for the next run
#   sudo bash scripts/image-check.sh --clean    # also removes the base and all of its storage
#
# No registry is needed: the base image the Dockerfile starts FROM is built here from Debian's
# mirror with debootstrap (the route for machines behind a firewall too). Needs root and
#   apt-get install -y --no-install-recommends podman buildah runc debootstrap uidmap \
#       slirp4netns fuse-overlayfs curl
# podman runs with settings of its own (vfs storage, runc, cgroupfs, modest ulimits) kept in
# $CONCLAVE_IMAGE_WORK, without touching /etc/containers. vfs copies a layer's whole file
# system, so the build needs far more disk than the image's size: the free space is checked
# first (CONCLAVE_IMAGE_MIN_FREE_GB), and the peak the build used is measured and printed.
#
# Where outbound HTTPS passes a TLS-inspecting proxy, the host's CA bundle is mounted into the
# build's RUN steps (with a pip.conf naming it) for the build only: nothing site-specific lands
# in the Dockerfile or in the image's layers. Set CONCLAVE_BUILD_CA=/path/bundle.pem to choose
# another bundle, or CONCLAVE_BUILD_CA= (empty) to hand none.
#
# Environment: CONCLAVE_IMAGE_WORK (default /var/tmp/conclave-image-check), CONCLAVE_IMAGE_PORT
# (host port, default 18080), DEBIAN_MIRROR (default http://deb.debian.org/debian),
# CONCLAVE_BUILD_NICE (default 10: the llama.cpp compile takes minutes on 2 cores),
# CONCLAVE_IMAGE_MIN_FREE_GB (default 16: the build took 12-15 GB here, other writers included, see docs/image.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${CONCLAVE_IMAGE_WORK:-/var/tmp/conclave-image-check}"
PORT="${CONCLAVE_IMAGE_PORT:-18080}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NICE="${CONCLAVE_BUILD_NICE:-10}"
MIN_FREE_GB="${CONCLAVE_IMAGE_MIN_FREE_GB:-16}"
CA_BUNDLE="${CONCLAVE_BUILD_CA-/etc/ssl/certs/ca-certificates.crt}"
BASE=localhost/conclave-base:bookworm
IMAGE=localhost/conclave:image-check
CONTAINER=conclave-image-check
CLEAN_BASE=0
[[ "${1:-}" == "--clean" ]] && CLEAN_BASE=1

fail() { echo "image-check: $*" >&2; exit 1; }

for tool in podman buildah debootstrap curl python3; do
    command -v "$tool" >/dev/null || {
        echo "image-check: $tool is missing; install podman buildah runc debootstrap uidmap" \
            "slirp4netns fuse-overlayfs curl (see the top of this script)" >&2
        exit 2
    }
done
[[ $EUID -eq 0 ]] || { echo "image-check: run as root (debootstrap and rootful podman)" >&2; exit 2; }

# --- free space, before anything is written --------------------------------------------------
mkdir -p "$WORK"
free_kb() { df -Pk "$WORK" | awk 'NR == 2 { print $4 }'; }
used_kb() { df -Pk "$WORK" | awk 'NR == 2 { print $3 }'; }
gb() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024**2:.1f}')" "$1"; }
have_kb=$(free_kb)
if (( have_kb < MIN_FREE_GB * 1024 * 1024 )); then
    echo "image-check: only $(gb "$have_kb") GB free on $(df -P "$WORK" | awk 'NR == 2 { print $6 }')" \
        "($WORK); the build needs about $MIN_FREE_GB GB there (podman's vfs storage copies" \
        "every layer whole). Free some space, point CONCLAVE_IMAGE_WORK at a larger disk, or" \
        "set CONCLAVE_IMAGE_MIN_FREE_GB if you know better." >&2
    exit 2
fi

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

sampler_pid=""
cleanup() {
    [[ -n "$sampler_pid" ]] && kill "$sampler_pid" 2>/dev/null || true
    podman rm -f "$CONTAINER" "$CONTAINER-closed" >/dev/null 2>&1 || true
    podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    # An interrupted build leaves its working containers behind (GBs on vfs): all in our storage.
    buildah rm --all >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true  # the build stages' untagged layers
    if [[ $CLEAN_BASE -eq 1 ]]; then
        podman rmi -f "$BASE" >/dev/null 2>&1 || true
        podman system reset -f >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# The most disk the build takes: sampled every 5 s from the file system's used space (other
# writers on the same disk count too, so it is an upper bound).
start_used_kb=$(used_kb)
echo 0 >"$WORK/peak_kb"
(
    peak=0
    while sleep 5; do
        grown=$(( $(used_kb) - start_used_kb ))
        (( grown > peak )) && peak=$grown && echo "$peak" >"$WORK/peak_kb"
    done
) &
sampler_pid=$!

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
    tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$BASE" >/dev/null \
        2>>"$WORK/podman.log"
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
echo "image-check: building $IMAGE (llama.cpp compiles: minutes; log in $WORK/build.log)"
t0=$(now)
# --format docker keeps HEALTHCHECK (the OCI format drops it). --layers=false: no image of
# every step kept for a cache (this build is removed at the end anyway); on vfs each would be
# one more whole copy of the file system, written and then deleted.
nice -n "$NICE" podman build --layers=false --format docker --build-arg "PYTHON_IMAGE=$BASE" \
    "${build_mounts[@]}" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log" >&2
    fail "the build failed; the whole log is $WORK/build.log"
}
build_s=$(seconds "$t0" "$(now)")
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""
peak_kb=$(cat "$WORK/peak_kb")
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$IMAGE")
base_layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$BASE")
size_gb=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e9:.2f}')" "$size_bytes")
echo "image-check: built in $build_s s: $size_gb GB, $layers layers, peak disk $(gb "$peak_kb") GB"

# --- run it with a key and ask one question ---------------------------------------------------
# podman's own complaints (no systemd here for HEALTHCHECK timers) go to a log of their own.
start() {
    local name=$1
    shift
    podman run -d --name "$name" "$@" -p "127.0.0.1:$PORT:80" "$IMAGE" >/dev/null \
        2>>"$WORK/podman.log" || fail "podman run failed: $(tail -5 "$WORK/podman.log")"
}
key=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
t0=$(now)
start "$CONTAINER" -e "CONCLAVE_API_KEYS=$key"
health_s=""
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
        health_s=$(seconds "$t0" "$(now)")
        break
    fi
    if [[ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" != "true" ]]; then
        podman logs "$CONTAINER" >&2
        fail "the container stopped before it served"
    fi
    sleep 0.2
done
[[ -n "$health_s" ]] || { podman logs "$CONTAINER" >&2; fail "no /health in 120 s"; }

no_key=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models")
[[ "$no_key" == "401" ]] || fail "a request without the key got HTTP $no_key, not 401"

question='What is the capital of France? Answer in one word.'
body=$(python3 -c 'import json, sys; print(json.dumps({"model": "default",
    "messages": [{"role": "user", "content": sys.argv[1]}]}))' "$question")
response=$(curl -sS --max-time 900 -w '\n%{http_code}' -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $key" -d "$body" "http://127.0.0.1:$PORT/v1/chat/completions")
answer_s=$(seconds "$t0" "$(now)")
status=${response##*$'\n'}
payload=${response%$'\n'*}
if [[ "$status" != "200" ]]; then
    podman logs "$CONTAINER" 2>&1 | tail -20 >&2
    fail "HTTP $status: $payload"
fi
answer=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])' <<<"$payload")
[[ -n "${answer//[[:space:]]/}" ]] || fail "empty answer: $payload"
echo "image-check: answered in $answer_s s after \`podman run\`: $answer"

# --- what the image holds: each model once, trusted at start without hashing -----------------
holdings=$(podman exec "$CONTAINER" python -c '
import importlib.metadata as metadata
from conclave.providers.packs import DEFAULT_PACKS, pack_status
from conclave.settings import Settings
wheels = [part.distribution for name in DEFAULT_PACKS for part in pack_status(name, Settings().models_dir).pack.parts]
kept = [name for name in wheels if any(True for _ in metadata.distributions(name=name))]
statuses = [pack_status(name, Settings().models_dir) for name in DEFAULT_PACKS]
unverified = [status.pack.name for status in statuses if not status.verified]
print("pack wheels in the image:", ", ".join(kept) or "none")
print("packs not verified at start:", ", ".join(unverified) or "none")
') || fail "could not inspect the packs inside the container"
grep -q "pack wheels in the image: none" <<<"$holdings" || fail "$holdings"
grep -q "packs not verified at start: none" <<<"$holdings" || fail "$holdings"
sizes=$(podman exec "$CONTAINER" du -sh /opt/venv /opt/conclave/models | awk '{ printf "%s %s  ", $2, $1 }')
podman rm -f "$CONTAINER" >/dev/null 2>>"$WORK/podman.log"

# --- closed by default: with no key it must not serve beyond /health -------------------------
start "$CONTAINER-closed"
closed=""
for _ in $(seq 1 600); do
    if [[ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER-closed")" != "true" ]]; then
        closed="refused to start: $(podman logs "$CONTAINER-closed" 2>&1 | grep -v '^\s*$' | tail -1)"
        break
    fi
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models" || true)
    if [[ "$status" != "000" ]]; then
        [[ "$status" == "200" ]] && fail "with no API key the container serves /v1/models (HTTP 200)"
        closed="answers HTTP $status to /v1/models"
        break
    fi
    sleep 0.2
done
[[ -n "$closed" ]] || fail "the container without a key neither stopped nor answered in 120 s"
podman rm -f "$CONTAINER-closed" >/dev/null 2>>"$WORK/podman.log"

echo "question: $question"
echo "answer:   $answer"
echo "without a key:         $closed"
echo "image size:            $size_gb GB ($sizes)"
echo "layers:                $layers ($base_layers of them the base's)"
echo "build time:            $build_s s"
echo "peak disk of the build: $(gb "$peak_kb") GB (vfs storage)"
echo "run to /health:        $health_s s"
echo "run to first answer:   $answer_s s"
