"""ZooKeeper identities: the ACLs kafkaops gives its znodes, and proof that a session is who it says.

kazoo reports CONNECTED before its SASL exchange is over, and ZooKeeper does not refuse
every failed exchange: a wrong DIGEST-MD5 password drops the connection (AUTH_FAILED
later), but a user the server does not know leaves the session connected *without* an
identity, so every write to kafkaops' znodes would fail later with a bare NoAuth.
:func:`confirm_sasl_identity` settles it at start: an ephemeral probe znode that only the
SASL user may write is created and written, so a session that is not that user fails at
once with "ZooKeeper authentication failed for SASL user X".
"""

from __future__ import annotations

import uuid
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError, NodeExistsError, NoNodeError
from kazoo.security import OPEN_ACL_UNSAFE, Permissions, make_acl, make_digest_acl

from kafkaops.config import ZooKeeperSettings
from kafkaops.errors import KafkaopsError

PROBE_PREFIX = "auth-probe-"


class ZooKeeperAuthError(KafkaopsError):
    """ZooKeeper did not authenticate the session as the profile's identity."""


def identity_acl(s: ZooKeeperSettings) -> Any:
    """Full rights for the session's identity (SASL user or digest), None without one."""
    if s.sasl_username is not None:
        return make_acl("sasl", s.sasl_username, all=True)
    if s.digest_username is not None and s.digest_password is not None:
        return make_digest_acl(s.digest_username, s.digest_password.reveal(), all=True)
    return None


def znode_acl(s: ZooKeeperSettings) -> list[Any]:
    """The ACL of the znodes kafkaops creates: all for its identity, read for the world
    unless ``read_protected``; ZooKeeper's open ACL without an identity."""
    own = identity_acl(s)
    if own is None:
        return list(OPEN_ACL_UNSAFE)
    return [own] if s.read_protected else [own, make_acl("world", "anyone", read=True)]


def directory_acl(s: ZooKeeperSettings) -> list[Any]:
    """The ACL of parent directories (``/kafkaops/checkpoints``). With a digest identity they
    are shared: anyone may read and create children (each protected by its creator's
    identity). With a SASL identity (a secured ensemble, one service identity) they are its
    own, so a client without it cannot squat a job's or subject's name: read for the world
    (nothing for it when ``read_protected``)."""
    own = identity_acl(s)
    if own is None:
        return list(OPEN_ACL_UNSAFE)
    if s.sasl_username is not None:
        return znode_acl(s)
    return [own, make_acl("world", "anyone", read=True, create=True)]


def confirm_sasl_identity(client: KazooClient, s: ZooKeeperSettings, root: str) -> None:
    """Prove that ``client``'s session is SASL user ``s.sasl_username`` (no-op without SASL).

    Creates ``root`` if missing (with :func:`znode_acl`, as kafkaops would anyway), then an
    ephemeral ``<root>/auth-probe-<uuid>`` whose ACL names only that user, writes it and
    deletes it. Raises ZooKeeperAuthError when ZooKeeper dropped the SASL exchange or the
    session lacks the identity, and a plain KafkaopsError when the identity may not create
    under ``root`` (the root belongs to someone else).
    """
    user = s.sasl_username
    if user is None:
        return
    failed = (f"ZooKeeper authentication failed for SASL user {user!r} at {s.connect} "
              "(unknown user or wrong password)")
    probe = f"{root.rstrip('/')}/{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        if client.exists(root) is None:
            try:
                client.create(root, b"", acl=znode_acl(s), makepath=True)
            except NodeExistsError:
                pass
        try:
            client.create(probe, b"", acl=[make_acl("sasl", user, all=True)], ephemeral=True)
        except NoAuthError:
            acls, _ = client.get_acls(root)
            if not _may_create(acls, user):
                raise KafkaopsError(f"ZooKeeper: SASL user {user!r} may not create znodes under {root} "
                                    f"(its ACL: {_describe(acls)})") from None
            raise ZooKeeperAuthError(failed) from None
        try:
            client.set(probe, b"ok")
        except NoAuthError:
            raise ZooKeeperAuthError(failed) from None
        try:
            client.delete(probe)
        except (NoNodeError, NoAuthError):
            pass  # ephemeral: it goes with the session
    except AuthFailedError:
        raise ZooKeeperAuthError(failed) from None


def _may_create(acls: list[Any], user: str) -> bool:
    return any(a.perms & Permissions.CREATE and (a.id.scheme, a.id.id) in (("sasl", user), ("world", "anyone"))
               for a in acls)


def _describe(acls: list[Any]) -> str:
    return ", ".join(f"{a.id.scheme}:{a.id.id}={'+'.join(a.acl_list)}" for a in acls) or "none"
