#!/usr/bin/env bash
# Packages the host's release binary as the node image, without a Rust image:
#   deploy/build-image.sh [TAG]          default tag taskswarm:local
# TASKSWARM_BIN: the binary (default $CARGO_TARGET_DIR/release/taskswarm, else target/);
# BASE_IMAGE: the Debian bookworm base (default debian:bookworm-slim; deploy/base-image.sh
# builds one offline). The binary is stripped in a scratch context (~20 MB instead of
# ~400 MB with debug info); the repository is not sent to Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-taskswarm:local}
BIN=${TASKSWARM_BIN:-${CARGO_TARGET_DIR:-target}/release/taskswarm}
[ -x "$BIN" ] || { echo "build-image.sh: no binary at $BIN (cargo build --release --bin taskswarm)" >&2; exit 1; }
CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT"' EXIT
strip -o "$CONTEXT/taskswarm" "$BIN"
cp deploy/Dockerfile.prebuilt "$CONTEXT/Dockerfile"
docker build -q --build-arg "BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}" -t "$TAG" "$CONTEXT" >/dev/null
echo "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
