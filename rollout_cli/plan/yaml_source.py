"""Safe YAML reading that remembers where every value came from.

PyYAML composes the document into nodes (with line/column marks); we build the
Python data ourselves from those nodes so that we can (1) refuse every tag but the
plain JSON-like ones, (2) report duplicate keys, (3) cap alias expansion, which is
where a "billion laughs" document does its damage, and (4) keep a map from each
value's path to its position for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from rollout_cli.errors import PlanError, Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000

Path = tuple[str | int, ...]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass
class Positions:
    """Where each value (and each mapping key) of a document stands, 1-based."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: Path, message: str, hint: str | None = None, *,
                key: bool = False, severity: str = "error") -> Problem:
        line, column = self.of(path, key=key)
        return Problem(self.file, line, column, message, hint, severity)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, file: str):
        self.positions = Positions(file)
        self.problems: list[Problem] = []
        self.count = 0
        self._loader = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        line, column = _pos(node)
        self.problems.append(Problem(self.positions.file, line, column, message, hint))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(node)
        self.positions.values[path] = _pos(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                self.fail(node, f"tag {node.tag} is not allowed", "plans use plain YAML only")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # a date is just text to a plan
        if node.tag not in _SCALAR_TAGS:
            self.fail(node, f"tag {node.tag} is not allowed", "plans use plain YAML only")
            return None
        try:
            return self._loader.yaml_constructors[node.tag](self._loader, node)
        except ValueError:
            # Python refuses to read an integer of more than 4300 digits.
            digits = sum(c.isdigit() for c in str(node.value))
            where = ".".join(str(p) for p in path) or "plan"
            self.fail(node, f"{where}: a number of {digits} digits is too long to read",
                      "plans hold small numbers; is this the right value?")
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.fail(node, f"tag {node.tag} is not allowed", "plans use plain YAML only")
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        # Merges first, so that explicit keys win, positions included.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, merged)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)  # raw text: YAML 1.1 would read `on:` as True
            if key in result:
                line, _ = self.positions.keys[(*path, key)]
                self.fail(key_node, f"duplicate key {key!r}", f"first given on line {line}")
                continue
            self.positions.keys[(*path, key)] = _pos(key_node)
            result[key] = self.build(value_node, (*path, key))
        return {**merged, **result}

    def _merge(self, value_node: yaml.Node, path: Path, into: dict[str, Any]) -> None:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.fail(source, "'<<' merges only mappings")
                continue
            for key, value in self._mapping(source, path).items():
                into.setdefault(key, value)


class _TooBig(Exception):
    def __init__(self, node: yaml.Node):
        self.node = node


_BILLION_LAUGHS = "aliases are expanded; is this a 'billion laughs' file?"


def _compose(text: str, file: str) -> list[yaml.Node]:
    try:
        return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = Problem(file, line, column, f"YAML syntax: {exc.problem or exc}")
        raise PlanError([problem]) from exc
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (a NUL byte, a control character): the reader
        # knows only its offset in the text.
        before = text[:exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        message = f"YAML syntax: unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise PlanError([Problem(file, line, column, message)]) from exc
    except yaml.YAMLError as exc:
        raise PlanError([Problem(file, 1, 1, f"YAML syntax: {exc}")]) from exc
    except RecursionError:
        raise PlanError([Problem(file, 1, 1, "document is nested too deeply")]) from None


def read_document(text: str | bytes, file: str, problems: list[Problem] | None = None
                  ) -> tuple[Any, Positions]:
    """Parse one YAML document into plain data plus positions; raise PlanError on any
    problem, except that, given ``problems``, those after which the document still reads
    (a duplicate key, whose first value is kept; a tag) are added there, so the caller
    can report them with everything else at once."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_FILE_BYTES:
        raise PlanError([Problem(file, 1, 1, f"plan file is larger than {MAX_FILE_BYTES} bytes, "
                                 "the limit", "plans are small; is this the right file?")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError([Problem(file, 1, 1, f"plan file is not UTF-8 text ({exc.reason})")]) \
                from exc
    nodes = _compose(text, file)
    if len(nodes) != 1:
        found = "an empty file" if not nodes else f"{len(nodes)} documents"
        raise PlanError([Problem(file, 1, 1, f"expected one YAML document, found {found}")])
    builder = _Builder(file)
    try:
        data = builder.build(nodes[0], ())
    except _TooBig as too_big:
        line, column = _pos(too_big.node)
        raise PlanError([Problem(file, line, column, f"document expands to more than "
                                 f"{MAX_NODES} values", _BILLION_LAUGHS)]) from None
    except RecursionError:
        raise PlanError([Problem(file, 1, 1, "document is nested too deeply")]) from None
    if builder.problems and problems is None:
        raise PlanError(builder.problems)
    if problems is not None:
        problems.extend(builder.problems)
    return data, builder.positions
