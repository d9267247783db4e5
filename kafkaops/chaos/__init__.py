"""Chaos checks: workloads under faults, and the properties that must hold ("nothing lost").

A cell is one workload (``group``: TypedProducer + TypedConsumer group; ``aggregate``: a
CheckpointedConsumer job counting per key; ``share``: a share group) under one fault
(broker SIGKILL/SIGSTOP, controller kill, rolling restart, ZooKeeper node kill, ZooKeeper
session expiry, network cut). :func:`~kafkaops.chaos.runner.run_cell` runs one on a
cluster; :mod:`kafkaops.chaos.checker` holds the properties; ``kafkaops chaos run`` the CLI.
"""
