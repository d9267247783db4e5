"""Kafka security administration: SCRAM users and ACLs (the audit trail is :mod:`kafkaops.audit`)."""
