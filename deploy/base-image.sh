#!/usr/bin/env bash
# A Debian bookworm base image (minbase + curl + ca-certificates) made with debootstrap
# from the Debian mirror apt already uses: for machines without Docker Hub.
#   deploy/base-image.sh [TAG]       default taskswarm-base:bookworm; does nothing if it exists
set -euo pipefail
TAG=${1:-taskswarm-base:bookworm}
if docker image inspect "$TAG" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT="$(mktemp -d /var/tmp/taskswarm-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase --include=ca-certificates,curl bookworm "$ROOT" "$MIRROR" >/dev/null
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb
tar -C "$ROOT" -c . | docker import - "$TAG" >/dev/null
echo "built $TAG"
