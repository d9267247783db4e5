"""Playbook files as YAML that remembers where everything is: the line of every key and item.

PyYAML's composer keeps each node's start mark; :func:`parse_yaml` records those lines
by path, so every later error can name ``file:line``. Duplicate keys are refused here
(plain YAML would keep the last one silently).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml

from kafkaops.errors import KafkaopsError


class PlaybookError(KafkaopsError):
    """A playbook that cannot run as written: syntax, schema, types or variables."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, step: str | None = None):
        self.file, self.line, self.step, self.reason = file, line, step, message
        where = file or "<playbook>"
        if line is not None:
            where += f":{line}"
        text = f"{where}: "
        if step:
            text += f"{step}: "
        super().__init__(text + message)


YamlPath = tuple[str | int, ...]
"""Where a node is in the document: keys and list indices from the root."""


@dataclass
class Source:
    """A parsed YAML document and the 1-based line of every key or item in it."""

    file: str
    data: Any
    lines: dict[YamlPath, int]
    text: str

    def line(self, path: YamlPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML with PyYAML's composer so every node keeps its line (start_mark.line)."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            lines: dict[YamlPath, int] = {}
            if node is not None:
                _walk(node, (), lines, file)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise PlaybookError(f"YAML syntax error: {problem}", file, line) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(f"YAML error: {exc}", file) from None
    return Source(file, data, lines, text)


def _walk(node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int], file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise PlaybookError(f"duplicate key {key!r}", file, key_node.start_mark.line + 1)
            seen.add(key)
            _walk(value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, file)
