#!/usr/bin/env bash
# Make sure a Docker engine answers; start one (as root) when none does.
# CI machines have no engine running and no image registry: dockerd runs with iptables
# off (containers still reach each other on a user-defined bridge network, and the
# host reaches them by their IP addresses) and the overlay2 storage driver where the
# kernel and file system allow it, else vfs (which copies every image per container:
# correct, but ten times slower). KAFKAOPS_DOCKER_STORAGE forces a driver.
# Fails loudly when it cannot: the containers tier must never be skipped silently.
set -euo pipefail

DATA_ROOT=${KAFKAOPS_DOCKER_ROOT:-/var/lib/kafkaops-docker}
LOG=${KAFKAOPS_DOCKERD_LOG:-/var/log/kafkaops-dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "dockerd.sh: no Docker engine answers and I am not root, so I cannot start one" >&2
  echo "            (start Docker yourself, or run as root)" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null; then
  echo "dockerd.sh: installing docker.io (dockerd, containerd, runc)" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
mkdir -p "$DATA_ROOT" "$(dirname "$LOG")"

overlay_works() {  # can this file system be an overlay upper dir?
  grep -qw overlay /proc/filesystems || return 1
  local t
  t=$(mktemp -d "$DATA_ROOT/.overlay-probe.XXXXXX")
  mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
  if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
    umount "$t/merged"; rm -rf "$t"; return 0
  fi
  rm -rf "$t"; return 1
}
STORAGE=${KAFKAOPS_DOCKER_STORAGE:-}
if [ -z "$STORAGE" ]; then
  if overlay_works; then STORAGE=overlay2; else STORAGE=vfs; fi
fi
echo "dockerd.sh: starting dockerd (storage $STORAGE, data root $DATA_ROOT, log $LOG)" >&2
nohup setsid dockerd --iptables=false --ip6tables=false --storage-driver="$STORAGE" \
  --data-root="$DATA_ROOT" >"$LOG" 2>&1 </dev/null &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd.sh: engine up" >&2
    exit 0
  fi
  sleep 0.5
done
echo "dockerd.sh: dockerd did not answer within 60 s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
