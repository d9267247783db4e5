"""BrokerControl: stop, start, restart or kill one broker (or KRaft controller), wherever it runs.

One playbook serves three kinds of deployment, chosen by configuration:

- ``local``: the JVM processes of a kafkaops LocalCluster (``kafkaops up``), by its state dir;
- ``docker``: containers, through the docker CLI (``docker stop|start|restart|kill``);
- ``shell``: command templates, e.g. ``ssh {host} sudo systemctl restart kafka``.

KRaft controllers are nodes too (ids 101.. locally, any node id elsewhere): the
``*_controller`` operations stop and start them the same way (docker: the node's
container; shell: ``controller_stop``/``controller_start`` templates, else the broker ones). A control only issues the command; the playbook
actions wait for the broker to leave or join the cluster metadata, or for a controller
to catch up with the metadata quorum, so every kind is judged the same way. This is the
one ops module allowed to import ``kafkaops.local``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from kafkaops.errors import ConfigError, KafkaopsError

log = logging.getLogger(__name__)

ENV_VAR = "KAFKAOPS_BROKER_CONTROL"
"""A YAML/JSON file path, or inline JSON, configuring BrokerControl (see :func:`from_config`)."""


class BrokerControlError(KafkaopsError):
    """A broker could not be stopped, started or restarted."""


class BrokerControl(Protocol):
    """Lifecycle of one broker by id. Stop is a controlled shutdown (SIGTERM / systemctl stop)."""

    def stop(self, broker: int, timeout: float = 120.0) -> None: ...

    def start(self, broker: int, timeout: float = 120.0) -> None: ...

    def restart(self, broker: int, timeout: float = 180.0) -> None: ...

    def kill(self, broker: int, timeout: float = 30.0) -> None: ...

    def stop_controller(self, node: int, timeout: float = 120.0) -> None: ...

    def start_controller(self, node: int, timeout: float = 120.0) -> None: ...

    def describe(self) -> str: ...


class LocalBrokerControl:
    """Brokers of a kafkaops LocalCluster (this process's object, or attached by directory).

    Attached clusters start brokers detached, so a broker this process (re)starts
    outlives it, as it would under systemd.
    """

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    @classmethod
    def attach(cls, base_dir: Path | str) -> LocalBrokerControl:
        from kafkaops.local.cluster import LocalCluster

        cluster = LocalCluster.attach(base_dir)
        cluster.detached = True
        return cls(cluster)

    def _known(self, broker: int) -> None:
        self.cluster.broker(broker)  # raises UnknownBrokerError naming the brokers it has

    def stop(self, broker: int, timeout: float = 120.0) -> None:
        self._known(broker)
        self.cluster.stop_broker(broker, timeout=timeout)

    def start(self, broker: int, timeout: float = 120.0) -> None:
        self._known(broker)
        if self.cluster.broker(broker).process.is_running():
            log.info("broker %d already runs; start is a no-op", broker)
            return
        self.cluster.start_broker(broker, wait=True, timeout=timeout)

    def restart(self, broker: int, timeout: float = 180.0) -> None:
        self._known(broker)
        self.cluster.stop_broker(broker, timeout=timeout / 2)
        self.cluster.start_broker(broker, wait=True, timeout=timeout / 2)

    def kill(self, broker: int, timeout: float = 30.0) -> None:
        self._known(broker)
        self.cluster.kill_broker(broker)

    def stop_controller(self, node: int, timeout: float = 120.0) -> None:
        self.cluster.stop_controller(node, timeout=timeout)

    def start_controller(self, node: int, timeout: float = 120.0) -> None:
        if self.cluster.controller(node).process.is_running():
            log.info("controller %d already runs; start is a no-op", node)
            return
        self.cluster.start_controller(node, wait=False)

    def describe(self) -> str:
        return f"local processes in {self.cluster.base_dir}"


class DockerBrokerControl:
    """Brokers as docker containers; ``containers`` maps broker id -> container name.

    Without a mapping, ``name_template`` (default ``kafka-{id}``) names the container, and
    ``controller_template`` (default ``controller-{id}``) a KRaft controller's; with one,
    ``containers`` maps every node id (brokers and controllers) to its container.
    """

    def __init__(
        self,
        containers: Mapping[int, str] | None = None,
        name_template: str = "kafka-{id}",
        docker: str = "docker",
        controller_template: str = "controller-{id}",
    ) -> None:
        self.containers = {int(k): str(v) for k, v in (containers or {}).items()}
        self.name_template, self.docker = name_template, docker
        self.controller_template = controller_template

    def container(self, broker: int, kind: str = "broker") -> str:
        if self.containers:
            if broker not in self.containers:
                known = ", ".join(str(b) for b in sorted(self.containers))
                raise BrokerControlError(f"no container configured for {kind} {broker} (nodes: {known})")
            return self.containers[broker]
        return (self.name_template if kind == "broker" else self.controller_template).format(id=broker)

    def _docker(self, broker: int, *args: str, timeout: float, kind: str = "broker") -> None:
        _run([self.docker, *args, self.container(broker, kind)], timeout, f"{kind} {broker}")

    def stop(self, broker: int, timeout: float = 120.0) -> None:
        self._docker(broker, "stop", "-t", str(int(max(timeout - 10, 10))), timeout=timeout)

    def start(self, broker: int, timeout: float = 120.0) -> None:
        self._docker(broker, "start", timeout=timeout)

    def restart(self, broker: int, timeout: float = 180.0) -> None:
        self._docker(broker, "restart", "-t", str(int(max(timeout / 2 - 10, 10))), timeout=timeout)

    def kill(self, broker: int, timeout: float = 30.0) -> None:
        self._docker(broker, "kill", timeout=timeout)

    def stop_controller(self, node: int, timeout: float = 120.0) -> None:
        self._docker(node, "stop", "-t", str(int(max(timeout - 10, 10))), timeout=timeout, kind="controller")

    def start_controller(self, node: int, timeout: float = 120.0) -> None:
        self._docker(node, "start", timeout=timeout, kind="controller")

    def describe(self) -> str:
        return "docker containers " + (", ".join(self.containers.values()) or self.name_template)


class ShellBrokerControl:
    """Brokers driven by shell command templates, one per operation.

    Templates are formatted with ``{id}`` and ``{host}`` (from ``hosts``: broker id ->
    host name) and split like a shell would (no shell runs; values are quoted), e.g.
    ``restart: "ssh {host} sudo systemctl restart kafka"``. ``restart`` defaults to
    stop then start; ``kill`` defaults to stop. KRaft controllers use
    ``controller_stop|start`` when given, else the broker ones (``hosts`` maps controller
    node ids too); a controller is stopped and started apart, so the quorum can be read
    while it is down.
    """

    OPERATIONS = ("stop", "start", "restart", "kill", "controller_stop", "controller_start")

    def __init__(self, commands: Mapping[str, str], hosts: Mapping[int, str] | None = None) -> None:
        unknown = set(commands) - set(self.OPERATIONS)
        if unknown:
            raise ConfigError(f"shell broker control: unknown operation(s) {sorted(unknown)}; use {self.OPERATIONS}")
        for op in ("stop", "start"):
            if op not in commands:
                raise ConfigError(f"shell broker control needs a {op!r} command template")
        self.commands = dict(commands)
        self.hosts = {int(k): str(v) for k, v in (hosts or {}).items()}
        for op, template in self.commands.items():
            try:
                template.format(id=0, host="h")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(f"shell broker control: bad {op} template {template!r}: {exc}") from None

    def command(self, op: str, broker: int) -> list[str]:
        host = self.hosts.get(broker)
        if host is None and self.hosts:
            known = ", ".join(str(b) for b in sorted(self.hosts))
            kind = "controller" if op.startswith("controller_") else "broker"
            raise BrokerControlError(f"no host configured for {kind} {broker} (nodes: {known})")
        values = {"id": shlex.quote(str(broker)), "host": shlex.quote(host or "")}
        return shlex.split(self.commands[op].format(**values))

    def _op(self, op: str, broker: int, timeout: float) -> None:
        if op.startswith("controller_") and op not in self.commands:
            op = op.removeprefix("controller_")  # the same service runs brokers and controllers
        if op == "restart" and op not in self.commands:
            self._op("stop", broker, timeout / 2)
            self._op("start", broker, timeout / 2)
            return
        _run(self.command(op, broker), timeout, f"node {broker} {op}")

    def stop(self, broker: int, timeout: float = 120.0) -> None:
        self._op("stop", broker, timeout)

    def start(self, broker: int, timeout: float = 120.0) -> None:
        self._op("start", broker, timeout)

    def restart(self, broker: int, timeout: float = 180.0) -> None:
        self._op("restart", broker, timeout)

    def kill(self, broker: int, timeout: float = 30.0) -> None:
        self._op("kill" if "kill" in self.commands else "stop", broker, timeout)

    def stop_controller(self, node: int, timeout: float = 120.0) -> None:
        self._op("controller_stop", node, timeout)

    def start_controller(self, node: int, timeout: float = 120.0) -> None:
        self._op("controller_start", node, timeout)

    def describe(self) -> str:
        return "shell commands: " + "; ".join(f"{k}: {v}" for k, v in self.commands.items())


def _run(cmd: list[str], timeout: float, what: str) -> None:
    log.info("%s: running %s", what, shlex.join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BrokerControlError(f"{what}: command not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise BrokerControlError(f"{what}: `{shlex.join(cmd)}` did not finish in {timeout:.0f}s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BrokerControlError(f"{what}: `{shlex.join(cmd)}` exited {proc.returncode}: {tail[0]}")


def from_config(config: Mapping[str, Any]) -> BrokerControl:
    """Build a BrokerControl from a mapping with ``type``: local | docker | shell.

    - ``{type: local, dir: PATH}`` (the directory `kafkaops up` keeps the cluster in)
    - ``{type: docker, containers: {1: kafka-1, 101: controller-1, ...}}`` or
      ``{type: docker, name_template: "kafka-{id}", controller_template: "controller-{id}"}``
    - ``{type: shell, hosts: {1: host1, ...}, stop: "...", start: "...", restart: "...",
      controller_stop: "...", controller_start: "..."}``
    """
    kind = config.get("type")
    if kind == "local":
        if "dir" not in config:
            raise ConfigError("local broker control needs 'dir' (the local cluster's directory)")
        return LocalBrokerControl.attach(Path(str(config["dir"])).expanduser())
    if kind == "docker":
        return DockerBrokerControl(
            config.get("containers"), str(config.get("name_template", "kafka-{id}")), str(config.get("docker", "docker")),
            str(config.get("controller_template", "controller-{id}")),
        )
    if kind == "shell":
        commands = {k: str(v) for k, v in config.items() if k in ShellBrokerControl.OPERATIONS}
        return ShellBrokerControl(commands, config.get("hosts"))
    raise ConfigError(f"broker control type must be local, docker or shell, not {kind!r}")


def load_config(spec: str) -> BrokerControl:
    """A BrokerControl from inline JSON or a YAML/JSON file (``--broker-control`` / ``$KAFKAOPS_BROKER_CONTROL``)."""
    text = spec
    if not spec.lstrip().startswith("{"):
        try:
            text = Path(spec).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read broker control config {spec}: {exc.strerror or exc}") from None
    try:
        config = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"broker control config {spec[:60]!r} is not valid YAML/JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError("broker control config must be a mapping with 'type'")
    return from_config(config)


def from_env() -> BrokerControl | None:
    spec = os.environ.get(ENV_VAR)
    return load_config(spec) if spec else None
