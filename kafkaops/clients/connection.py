"""Why a client cannot connect: refusals (authentication, TLS, protocol) named at once.

librdkafka treats a refused connection as transient: it reports it through its
``error_cb`` and logs, then retries until a request times out, so a wrong password
shows up two minutes later as "Broker transport failure". A :class:`ConnectionWatch`
is that ``error_cb`` (and the ``logger``) of kafkaops' clients: it recognises

- ``_AUTHENTICATION``: the SASL credentials were refused (wrong password, unknown user);
- ``_SSL``: the TLS handshake failed (untrusted CA, expired certificate, wrong host),
  with the reason from a handshake of its own when librdkafka's text does not say it;
- a protocol mismatch: a PLAINTEXT/SASL_PLAINTEXT client on a TLS listener (every broker
  closes the connection during the first request) or a TLS client on a plaintext one;

and raises the one :class:`ConnectionRefused` naming the cause from the call that served
the callback (``poll``, ``flush``, ``consume``), then from every later one. A refused
connection is a configuration error: nothing is gained by retrying it for minutes.
:func:`check_connection` asks a cluster for its metadata with the same watch and fails
within ``timeout`` seconds with the same errors (the CLI runs it first);
:func:`await_result` waits for an Admin API future while serving the watch.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)

T = TypeVar("T")

_TLS_REFUSAL = ("certificate", "verify failed", "alert", "no shared cipher", "unsupported protocol",
                "no protocols available")
"""Words of a TLS handshake that failed on its merits; a connection closed mid-handshake (a
broker stopping) is a transport error librdkafka retries, not a refusal."""
_BROKER = re.compile(r"(?:\w+://)?(\[?[\w.\-:]+?\]?:\d+)/(?:bootstrap|\d+)")


class ConnectionRefused(KafkaopsError):
    """The brokers refused this client's connection; ``cause`` says why in one word."""

    cause = "refused"

    def __init__(self, message: str, broker: str | None = None) -> None:
        super().__init__(message)
        self.broker = broker


class AuthenticationFailed(ConnectionRefused):
    """SASL authentication failed: wrong password or unknown user (Kafka does not say which)."""

    cause = "authentication"


class TlsVerificationFailed(ConnectionRefused):
    """The TLS handshake failed: the broker's certificate is untrusted, expired or for another host."""

    cause = "tls"


class ProtocolMismatch(ConnectionRefused):
    """The client's ``security.protocol`` is not the listener's (plaintext vs TLS)."""

    cause = "protocol"


class AuthorizationFailed(KafkaopsError):
    """The principal authenticated, but no ACL allows what it asked (a topic, a group, the cluster)."""

    def __init__(self, message: str, resource: str) -> None:
        super().__init__(message)
        self.resource = resource


_AUTHZ = {KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic", KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
          KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster", KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
          "transactional id"}


def authorization_error(err: KafkaError, profile: ClusterProfile, what: str, names: str) -> AuthorizationFailed | None:
    """An AuthorizationFailed naming the principal, the operation and the resource, when ``err``
    is one of Kafka's authorization errors; ``what`` is the attempt ("read", "write"), ``names``
    the topics or group it was about."""
    kind = _AUTHZ.get(err.code())
    if kind is None:
        return None
    resource = f"{kind} {names}" if kind in ("topic", "group") else f"the {kind}"
    return AuthorizationFailed(
        f"not authorized: {profile.principal} may not {what} {resource} ({err.name()}); "
        "an ACL must allow it (kafkaops acl grant-producer / grant-consumer / grant)", resource)


def producer_denied(err: KafkaError, profile: ClusterProfile, topic: str) -> AuthorizationFailed | None:
    """An idempotent producer's fatal authorization error (its producer ID refused, or a topic
    denied), naming the principal and the topic it writes."""
    if err.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
        return AuthorizationFailed(
            f"not authorized: {profile.principal} may not write to topic {topic!r}: the idempotent producer's ID "
            f"was refused ({err.name()}); it needs Write on the topic (kafkaops acl grant-producer)", f"topic {topic}")
    return authorization_error(err, profile, "write to", repr(topic))


class NoBrokerAnswered(KafkaopsError):
    """No broker answered within the timeout, and none refused: unreachable or down."""


@dataclass(frozen=True)
class _Identity:
    protocol: str
    mechanism: str | None
    user: str | None
    ca_file: str | None
    check_hostname: bool

    @classmethod
    def of(cls, p: ClusterProfile) -> _Identity:
        s = p.security
        return cls(s.protocol, s.sasl_mechanism if s.sasl else None, s.username if s.sasl else None,
                   str(s.ca_file) if s.ca_file else None, s.check_hostname)


def classify(text: str, code: int | None, profile: ClusterProfile) -> ConnectionRefused | None:
    """The refusal an ``error_cb`` error or a librdkafka FAIL log line means, or None.

    Connections closed early are not recognised here, even where librdkafka guesses
    "connecting to a PLAINTEXT broker listener?" (it adds that to any disconnection in the
    TLS handshake, a broker stopping mid-handshake too): one closed connection proves
    nothing; :class:`ConnectionWatch` counts them per broker.
    """
    who = _Identity.of(profile)
    text = text.split("]: ", 1)[-1] if text.startswith("[thrd:") else text
    m = _BROKER.search(text)
    broker = m.group(1) if m else None
    at = f" at {broker}" if broker else ""
    lower = text.lower()
    if code == KafkaError._AUTHENTICATION or "sasl authentication error" in lower:
        if who.mechanism is None:
            return AuthenticationFailed(f"Kafka refused the connection{at}: the listener requires authentication "
                                        f"and this client uses {who.protocol}", broker)
        return AuthenticationFailed(
            f"authentication failed for mechanism {who.mechanism} as user {who.user!r}{at}: "
            "invalid credentials (wrong password or unknown user)", broker)
    if "wrong version number" in lower:  # OpenSSL read bytes that are not TLS: a plaintext listener
        return ProtocolMismatch(
            f"protocol mismatch{at}: this client speaks {who.protocol} (TLS) but the listener is plaintext; "
            "check security.protocol in the profile", broker)
    if (code == KafkaError._SSL or "ssl handshake failed" in lower) and any(w in lower for w in _TLS_REFUSAL):
        return TlsVerificationFailed(f"TLS verification failed{at}: {_tls_reason(text, broker, who)}", broker)
    return None


def _tls_reason(text: str, broker: str | None, who: _Identity) -> str:
    """Why the handshake failed, from a handshake of our own (OpenSSL's verify message:
    'certificate has expired', 'self-signed certificate in certificate chain', ...)."""
    if broker is not None:
        host, _, port = broker.rpartition(":")
        try:
            ctx = ssl.create_default_context(cafile=who.ca_file) if who.ca_file else ssl.create_default_context()
            ctx.check_hostname = who.check_hostname
            with socket.create_connection((host.strip("[]"), int(port)), timeout=3) as sock:
                with ctx.wrap_socket(sock, server_hostname=host.strip("[]")):
                    pass
        except ssl.SSLCertVerificationError as exc:
            trust = f"CA file {who.ca_file}" if who.ca_file else "the system's CAs (the profile gives no ca_file)"
            return f"{exc.verify_message} (the broker's certificate, checked against {trust})"
        except (OSError, ValueError):
            pass
    detail = text.split("SSL handshake failed:", 1)[-1].split("(after", 1)[0].strip()
    return detail or text


class ConnectionWatch:
    """``error_cb`` and ``logger`` of one librdkafka client: raises the first refusal (see module doc).

    ``config()`` gives the two settings. Messages are passed on to ``logger`` unchanged.
    ``refused`` is the refusal once seen; :meth:`check` raises it.
    """

    def __init__(self, profile: ClusterProfile | str, logger: logging.Logger | None = None) -> None:
        self.profile = as_profile(profile)
        self.logger = logger or log
        self.refused: ConnectionRefused | None = None
        self.all_down = False
        """librdkafka reported every broker down (and none refused)."""
        self._closed_early: dict[str, int] = {}  # broker -> connections closed in the first request
        self._lock = threading.Lock()
        self._brokers = {b.strip() for b in self.profile.bootstrap_servers.split(",")}
        self._adapter = _WatchingLogger(self.logger, self)

    def config(self) -> dict[str, Any]:
        """The librdkafka settings that route errors and logs through this watch."""
        return {"error_cb": self.error_cb, "logger": self._adapter}

    def check(self) -> None:
        """Raise the refusal seen so far, if any."""
        if self.refused is not None:
            raise self.refused

    def error_cb(self, err: KafkaError) -> None:
        """librdkafka's error callback: remember and raise a refusal; log the rest."""
        if self.refused is None:
            refusal = classify(err.str(), err.code(), self.profile)
            if refusal is None and err.code() == KafkaError._ALL_BROKERS_DOWN:
                refusal = self._mismatch_everywhere()
                self.all_down = refusal is None
            if refusal is not None:
                self._refuse(refusal)
        if self.refused is not None:
            raise self.refused
        self.logger.info("librdkafka: %s", err.str())

    def on_log(self, message: str) -> None:
        """A librdkafka log line: refusals in FAIL lines, and connections closed in the first
        request or handshake (counted per broker: one proves nothing, every broker does)."""
        if self.refused is not None:
            return
        text = message.split("]: ", 1)[-1] if message.startswith("[thrd:") else message
        if "handshake failed" in text or "SASL authentication error" in text:
            refusal = classify(text, None, self.profile)
            if refusal is not None:
                self._refuse(refusal)
                return
        state = "SSL_HANDSHAKE" if self.profile.security.tls else "APIVERSION_QUERY"
        if "Disconnected" not in text or f"in state {state}" not in text:
            return
        m = _BROKER.search(text)
        if m:
            with self._lock:
                self._closed_early[m.group(1)] = self._closed_early.get(m.group(1), 0) + 1
            refusal = self._mismatch_everywhere(min_each=2)
            if refusal is not None:
                self._refuse(refusal)

    def _mismatch_everywhere(self, min_each: int = 1) -> ConnectionRefused | None:
        """Every bootstrap broker closed this client's connections ``min_each`` times in the
        first request (plaintext client) or the TLS handshake (TLS client): the listeners
        speak the other protocol."""
        with self._lock:
            counts = dict(self._closed_early)
        if not counts or not all(counts.get(b, 0) >= min_each for b in self._brokers):
            return None
        proto = self.profile.security.protocol
        brokers = ", ".join(sorted(self._brokers))
        expected = "plaintext (PLAINTEXT or SASL_PLAINTEXT?)" if self.profile.security.tls else "TLS (SSL or SASL_SSL?)"
        return ProtocolMismatch(
            f"protocol mismatch at {brokers}: every broker closed the connection at once, so the listeners do not "
            f"speak {proto}; they look {expected}: check security.protocol in the profile", sorted(self._brokers)[0])

    def _refuse(self, refusal: ConnectionRefused) -> None:
        with self._lock:
            if self.refused is None:
                self.refused = refusal
                self.logger.info("connection refused: %s", refusal)


class _WatchingLogger(logging.LoggerAdapter[logging.Logger]):
    """Passes librdkafka's log calls on, showing each line to the watch first."""

    def __init__(self, logger: logging.Logger, watch: ConnectionWatch) -> None:
        super().__init__(logger, {})
        self.watch = watch

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if args:
            try:
                self.watch.on_log(str(args[-1]))
            except Exception:  # noqa: BLE001 - a log line must never break the client
                pass
        self.logger.log(level, msg, *args, **kwargs)


def watched(profile: ClusterProfile | str, config: Mapping[str, Any] | None = None,
            logger: logging.Logger | None = None) -> tuple[dict[str, Any], ConnectionWatch]:
    """``config`` (a rendered librdkafka config) with a new watch's ``error_cb`` and ``logger``."""
    watch = ConnectionWatch(profile, logger)
    return {**(config or {}), **watch.config()}, watch


def await_result(client: Any, future: Future[T], timeout: float, what: str) -> T:
    """``future.result()`` of an Admin API call, serving ``client``'s callbacks meanwhile, so a
    refusal raises at once instead of after the request timeout."""
    deadline = Deadline(timeout)
    while not future.done():
        if deadline.expired:
            raise NoBrokerAnswered(f"{what}: no answer from the cluster within {timeout:.0f}s")
        client.poll(deadline.remaining(cap=0.2))
    return future.result()


def check_connection(cluster: ClusterProfile | str, timeout: float = 10.0) -> int:
    """Ask the cluster for its metadata; returns how many brokers it has. Raises a
    ConnectionRefused naming the cause, or NoBrokerAnswered after ``timeout`` seconds."""
    from confluent_kafka.admin import AdminClient

    profile = as_profile(cluster)
    conf, watch = watched(profile, profile.librdkafka(**{"socket.connection.setup.timeout.ms": 5000}))
    admin = AdminClient(conf)
    deadline = Deadline(timeout)
    last = "no answer"
    while True:
        try:
            admin.poll(0)
            watch.check()
            md = admin.list_topics(timeout=deadline.remaining(cap=0.5, floor=0.05))
            return len(md.brokers)
        except KafkaException as exc:
            last = exc.args[0].str()
        admin.poll(0)
        watch.check()
        if watch.all_down:
            raise NoBrokerAnswered(f"no broker at {profile.bootstrap_servers} is reachable ({last})")
        if deadline.expired:
            raise NoBrokerAnswered(f"no broker at {profile.bootstrap_servers} answered within {timeout:.0f}s ({last})")
