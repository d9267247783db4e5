#!/usr/bin/env bash
# Build kafkaops' container images offline (no image registry is needed):
#   kafkaops/base:bookworm-jre17  Debian bookworm minbase + OpenJDK 17 JRE (debootstrap + docker import)
#   kafkaops/kafka:<version>      + the Maven-fetched Kafka jars (kafkaops.local.distribution):
#                                 3.9.x (ZooKeeper mode, also tagged latest) and 4.x (KRaft)
#   kafkaops/zookeeper:<version>  the 3.9 jars, ZooKeeper's entrypoint
# Each image is skipped when present and built from the same inputs (a content hash
# label), so a warm run takes seconds. FORCE=1 rebuilds the Kafka/ZooKeeper images,
# FORCE_BASE=1 the base as well. Needs a running engine (compose/dockerd.sh) and,
# for the base image, root (debootstrap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PYTHON=${PYTHON:-$root/.venv/bin/python}
BASE_IMAGE=${KAFKAOPS_BASE_IMAGE:-kafkaops/base:bookworm-jre17}
SUITE=${DEBIAN_SUITE:-bookworm}

log() { echo "build-images: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
label_of() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (start one: compose/dockerd.sh)"

# ---------------------------------------------------------------- base image
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  # the mirror apt already uses (deb822 "URIs:" or one-line "deb URL suite ...")
  local url
  url=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
    awk '$1=="URIs:" && $2 !~ /security/ {print $2; exit} $1=="deb" && $2 !~ /security/ && $2 ~ /^http/ {print $2; exit}')
  echo "${url:-http://deb.debian.org/debian}"
}

build_base() {
  [ "$(id -u)" = 0 ] || die "building $BASE_IMAGE needs root (debootstrap); run as root once, or docker load it"
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  fi
  local mirror rootfs
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/kafkaops-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' RETURN
  log "debootstrap $SUITE minbase + openjdk-17-jre-headless from $mirror"
  debootstrap --variant=minbase --include=openjdk-17-jre-headless "$SUITE" "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; die "debootstrap failed (full log: $rootfs.log)"; }
  rm -f "$rootfs.log"
  # smaller image = faster container creation on the vfs storage driver
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' -c 'LABEL org.kafkaops.base="debian-'"$SUITE"'-minbase-openjdk-17-jre-headless"' \
    - "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

if [ "${FORCE_BASE:-0}" = 1 ] || ! have_image "$BASE_IMAGE"; then
  build_base
else
  log "$BASE_IMAGE present"
fi

# ---------------------------------------------------------------- kafka + zookeeper
# build_kafka MODE: the jars of that mode's Kafka line (zookeeper: 3.9, which also runs
# ZooKeeper; kraft: 4.x), the kafka image and, for zookeeper, the zookeeper image from it.
build_kafka() {
  local mode=$1 libs version kafka_image zookeeper_image hash ctx what
  read -r libs version < <("$PYTHON" -c "from kafkaops.local.distribution import resolve; d = resolve(kraft='$mode' == 'kraft'); print(d.libs, d.version)") \
    || die "could not resolve the Kafka jars (run: .venv/bin/kafkaops fetch --mode $mode)"
  kafka_image=${KAFKA_IMAGE_NAME:-kafkaops/kafka}:$version
  zookeeper_image=${ZOOKEEPER_IMAGE_NAME:-kafkaops/zookeeper}:$version
  what=$kafka_image
  [ "$mode" = zookeeper ] && what="$kafka_image and $zookeeper_image"
  hash=$( {
    echo "$base_id $version"
    (cd "$here/images" && find . -type f | sort | xargs sha256sum)
    (cd "$libs" && find . -maxdepth 1 -name '*.jar' -printf '%f %s\n' | sort)
  } | sha256sum | cut -c1-16)

  if [ "${FORCE:-0}" != 1 ] && [ "$(label_of "$kafka_image" org.kafkaops.context-hash)" = "$hash" ] &&
    { [ "$mode" = kraft ] || [ "$(label_of "$zookeeper_image" org.kafkaops.context-hash)" = "$hash" ]; }; then
    log "$what up to date ($hash)"
    return
  fi

  ctx=$(mktemp -d /var/tmp/kafkaops-image.XXXXXX)
  mkdir -p "$ctx/opt/kafka/libs" "$ctx/opt/kafka/config"
  cp "$here/images/kafka/Dockerfile" "$ctx/"
  cp -r "$here/images/kafka/bin" "$ctx/opt/kafka/"
  cp "$libs"/*.jar "$ctx/opt/kafka/libs/"
  chmod 0755 "$ctx/opt/kafka/bin/"*

  # the ZooKeeper-mode line keeps the :latest tags (what compose and the fixtures default to)
  local latest=()
  [ "$mode" = zookeeper ] && latest=(-t "${kafka_image%:*}:latest")
  log "building $kafka_image (Kafka $version, $mode mode, $(ls "$ctx/opt/kafka/libs" | wc -l) jars)"
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "KAFKA_VERSION=$version" \
    --build-arg "CONTEXT_HASH=$hash" -t "$kafka_image" "${latest[@]}" "$ctx" >/dev/null \
    || { rm -rf "$ctx"; die "docker build of $kafka_image failed"; }
  rm -rf "$ctx"
  if [ "$mode" = zookeeper ]; then
    log "building $zookeeper_image"
    DOCKER_BUILDKIT=0 docker build -q --build-arg "KAFKA_IMAGE=$kafka_image" --build-arg "CONTEXT_HASH=$hash" \
      -t "$zookeeper_image" -t "${zookeeper_image%:*}:latest" "$here/images/zookeeper" >/dev/null
  fi
  log "built $what ($hash)"
}

base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
# MODES="zookeeper kraft" (default): the Kafka 3.9 images (ZooKeeper mode, and the ZooKeeper
# kafkaops coordinates through) and the Kafka 4.x image (KRaft, compose/docker-compose.kraft.yml)
for mode in ${MODES:-zookeeper kraft}; do
  build_kafka "$mode"
done
docker image prune -f >/dev/null 2>&1 || true
