"""The Docker engine side of the containers backend: a client, the images, leftovers.

No registry is reachable in CI, so every image is built locally (``make images``): a
missing one is an error naming the fix, never a pull. testcontainers' Ryuk reaper would
need a registry image too, so it is off; containers and networks carry labels naming
the owning process instead, and those of dead owners are removed at the next start.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kafkaops.errors import ClusterError

log = logging.getLogger(__name__)

KAFKA_IMAGE_ENV = "KAFKAOPS_KAFKA_IMAGE"
ZOOKEEPER_IMAGE_ENV = "KAFKAOPS_ZOOKEEPER_IMAGE"
DEFAULT_KAFKA_IMAGE = "kafkaops/kafka:3.9.2"
DEFAULT_ZOOKEEPER_IMAGE = "kafkaops/zookeeper:3.9.2"
LABEL = "org.kafkaops.cluster"
OWNER_LABEL = "org.kafkaops.owner-pid"
_images_checked: set[str] = set()


def docker_client() -> Any:
    """A docker SDK client (testcontainers' own), or a clear error when no engine answers."""
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True  # Ryuk's image would come from a registry
    import docker  # type: ignore[import-untyped]

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable engine
        raise ClusterError(
            f"no Docker engine answers ({exc}); start one (as root: compose/dockerd.sh) and build "
            "the images (make images)"
        ) from None
    return client


def require_image(client: Any, image: str) -> None:
    """Fail with the fix when an image is missing (no registry: nothing would pull it)."""
    if image in _images_checked:
        return
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ClusterError(
            f"image {image} is not in the local Docker engine: build it with `make images` "
            f"(or point {KAFKA_IMAGE_ENV} / {ZOOKEEPER_IMAGE_ENV} at images you have)"
        ) from None
    _images_checked.add(image)


def to_env(prefix: str, props: dict[str, str]) -> dict[str, str]:
    """``min.insync.replicas`` -> ``KAFKA_MIN_INSYNC_REPLICAS`` (the images' naming rule:
    ``.`` -> ``_``, ``_`` -> ``__``, ``-`` -> ``___``, upper case)."""
    out = {}
    for name, value in props.items():
        env = "".join({".": "_", "_": "__", "-": "___"}.get(ch, ch) for ch in name).upper()
        out[prefix + env] = str(value)
    return out


def owner_labels(cluster_id: str) -> dict[str, str]:
    """The labels of a cluster's containers and network: the cluster and this process."""
    return {LABEL: cluster_id, OWNER_LABEL: str(os.getpid())}


def remove_leftovers(client: Any | None = None) -> int:
    """Remove containers and networks of clusters whose owning process is gone."""
    client = client or docker_client()
    removed = 0
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if not _pid_alive(c.labels.get(OWNER_LABEL, "")):
            c.remove(force=True, v=True)
            removed += 1
    for net in client.networks.list(filters={"label": LABEL}):
        if not _pid_alive(net.attrs.get("Labels", {}).get(OWNER_LABEL, "")):
            try:
                net.remove()
            except Exception:  # noqa: BLE001 - still in use by a container being removed
                continue
    if removed:
        log.info("removed %d leftover container(s) of dead test runs", removed)
    return removed


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
