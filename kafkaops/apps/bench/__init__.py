"""The benchmarks behind ``kafkaops bench``: contestants side by side, reported as ratios.

:mod:`~kafkaops.apps.bench.timing` holds what they share (measurements, rounds, the
report); :mod:`~kafkaops.apps.bench.clients` the produce/consume benchmarks,
:mod:`~kafkaops.apps.bench.checkpoint` the checkpoint one and
:mod:`~kafkaops.apps.bench.balance` the partitioning strategies.
"""
