"""YAML loading that remembers where every key and list item sits, for located error messages.

`yaml.safe_load` semantics (no tags, no code), plus: duplicate keys are errors, anchors and
aliases are refused before anything expands them (a few hundred bytes of nested aliases expand
to billions of nodes), and the file must be UTF-8 text holding one mapping.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from overparam.atomic import read_regular
from overparam.errors import OverparamError

KeyPath = tuple[str | int, ...]
Positions = dict[KeyPath, tuple[int, int]]  # key path -> (line, column), both 1-based
MAX_SPEC_BYTES = 1 << 20  # the largest shipped spec is a few kB
MAX_DEPTH = 32  # nested mappings and lists; the shipped specs nest 7 deep. PyYAML composes by recursion


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader, but `1e-3` is a number as in YAML 1.2 (YAML 1.1 wants `1.0e-3` and reads
    `1e-3` as a string, which a strict schema would then refuse). A quoted "1e-3" stays a string."""


SpecLoader.yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _number(loader: SpecLoader, node: yaml.ScalarNode) -> float | int:
    """A YAML float; a whole one (4e2, 400.0) is the integer it equals, as in JSON, so that
    `steps: 1e6` is a step count and the JSON Schema's `integer` means what the validator does."""
    value = loader.construct_yaml_float(node)
    return int(value) if value.is_integer() and abs(value) <= 2**53 else value


SpecLoader.add_constructor("tag:yaml.org,2002:float", _number)


def load_yaml(path: Path) -> tuple[dict[str, Any], Positions]:
    """The document as plain data and the position of every key; OverparamError when unreadable."""
    text = _read_text(path)
    _bounded_nesting(path, text)
    loader = SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise OverparamError(f"{path}:1:1: the file is empty; a spec is a YAML mapping with id, models, checks, …")
        if not isinstance(node, yaml.MappingNode):
            raise OverparamError(f"{path}:{_line_col(node)}: expected a YAML mapping at the top, got {_kind(node)}")
        positions: Positions = {}
        problems: list[str] = []
        _walk(node, (), positions, problems, path, set())
        if problems:
            raise OverparamError(*problems)
        data = loader.construct_document(node)
    except yaml.YAMLError as err:
        raise OverparamError(_yaml_error_line(path, err)) from err
    finally:
        loader.dispose()
    return data, positions


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise OverparamError(f"{path}: is a directory; give a spec file (or use verify-all --specs DIR)")
    raw = read_regular(path, "spec", MAX_SPEC_BYTES)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise OverparamError(f"{path}:{line}:{col}: not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8") from err


def _bounded_nesting(path: Path, text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH from the parser's events (a flat stream, no recursion),
    before the composer would recurse into it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    where = f"{event.start_mark.line + 1}:{event.start_mark.column + 1}" if event.start_mark else "1:1"
                    raise OverparamError(f"{path}:{where}: nested more than {MAX_DEPTH} deep; a spec nests a few levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as err:
        raise OverparamError(_yaml_error_line(path, err)) from err


def _walk(node: yaml.Node, at: KeyPath, positions: Positions, problems: list[str], path: Path, visited: set[int]) -> None:
    if id(node) in visited:  # the composer hands an alias the anchor's own node: met twice
        raise OverparamError(
            f"{path}:{_line_col(node)}: {dotted(at)}: repeats the value anchored here (an alias, *name); anchors and aliases are not supported in specs: write the value out"
        )
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    f"{path}:{_line_col(key_node)}: {dotted(at + (key,))}: merge keys (<<) are not supported in specs; write the keys out"
                )
                continue
            if key_node.tag != "tag:yaml.org,2002:str":
                kind = key_node.tag.rsplit(":", 1)[-1]
                problems.append(
                    f"{path}:{_line_col(key_node)}: {dotted(at + (key,))}: YAML reads this key as a {kind}, not a name; quote it"
                )
            if key in seen:
                first = seen[key].start_mark.line + 1
                problems.append(f"{path}:{_line_col(key_node)}: {dotted(at + (key,))}: duplicate key (first at line {first}); keep one")
            seen[key] = key_node
            positions[at + (key,)] = _mark(key_node)
            _walk(value_node, at + (key,), positions, problems, path, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            positions[at + (index,)] = _mark(item)
            _walk(item, at + (index,), positions, problems, path, visited)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _line_col(node: yaml.Node) -> str:
    line, col = _mark(node)
    return f"{line}:{col}"


def _kind(node: yaml.Node) -> str:
    return {yaml.ScalarNode: "a single value", yaml.SequenceNode: "a list"}.get(type(node), "something else")


def _yaml_error_line(path: Path, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    detail = f"{problem} ({context})" if context else problem
    if "\\t" in detail or "'\\t'" in detail:
        detail += "; indent with spaces, not tabs"
    return f"{path}:{where}: yaml: {detail}"


def dotted(at: KeyPath) -> str:
    """('models', 0, 'depth') -> 'models[0].depth'."""
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"
