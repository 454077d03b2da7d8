"""YAML documents as plain data with the line of every path, and pydantic errors as located
problems: shared by the pathway and instrument loaders. Pure Python."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from workflows.errors import Problem

_Path = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Document:
    """A YAML document as plain data, plus the line where each path starts."""

    def __init__(self, text: str) -> None:
        self.lines: dict[_Path, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data: Any = self._convert(node, ()) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            self.problems.append(Problem((), f"not valid YAML: {exc}", line))
            self.data = None

    def _convert(self, node: yaml.Node, path: _Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            own: list[Any] = []
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self._constructor.construct_object(key_node, deep=True)
                if isinstance(key, list | dict):
                    line = key_node.start_mark.line + 1
                    self.problems.append(Problem(path, "a key must be a plain value", line))
                    return None
                if key in own:
                    line = key_node.start_mark.line + 1
                    self.problems.append(Problem((*path, key), "duplicate key", line))
                own.append(key)
            # `<<: *anchor` entries are merged in front; the mapping's own keys win.
            self._constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self._convert(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def line_of(self, path: _Path) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def located(doc: Document, problems: Iterable[Problem]) -> list[Problem]:
    return [
        p if p.line is not None else Problem(p.path, p.message, doc.line_of(p.path))
        for p in problems
    ]


def schema_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(Problem(path, message))
    return problems


def parse(text: str, model: type[BaseModel], *, what: str) -> tuple[Any, Document, list[Problem]]:
    """The document validated as `model` (None when it is not), the document, and the problems
    found so far (YAML, duplicate keys, shape), each located."""
    doc = Document(text)
    if doc.data is None:
        return None, doc, doc.problems or [Problem((), "the document is empty", 1)]
    if not isinstance(doc.data, dict):
        return None, doc, [*doc.problems, Problem((), f"{what} is a mapping", 1)]
    try:
        parsed = model.model_validate(doc.data)
    except ValidationError as exc:
        return None, doc, located(doc, [*doc.problems, *schema_problems(exc)])
    return parsed, doc, list(doc.problems)
