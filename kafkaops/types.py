"""Small value types every layer shares."""

from __future__ import annotations

TP = tuple[str, int]
"""A topic partition, ``(topic, partition)``: hashable, sortable, cheap to build."""
