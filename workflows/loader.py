"""Reading pathway definitions from YAML, with every problem reported at its line.

`load_definition` returns a valid `PathwayDefinition` or raises `DefinitionError` carrying all
problems found (shape and semantics), each with its path in the document and its line number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workflows.definition import PathwayDefinition
from workflows.errors import DefinitionError, Problem
from workflows.facts import FactCatalogue
from workflows.validation import validate_definition

_Path = tuple[str | int, ...]


class _Document:
    """A YAML document as plain data, plus the line where each path starts."""

    def __init__(self, text: str) -> None:
        self.lines: dict[_Path, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            self.problems.append(Problem((), f"not valid YAML: {exc}", line))
            self.data: Any = None
            return
        self.data = self._convert(node, ()) if node is not None else None

    def _convert(self, node: yaml.Node, path: _Path) -> Any:
        # A mapping's entries are located at their key; everything else at its own start.
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                if key not in result:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                else:
                    self.problems.append(
                        Problem(
                            (*path, key),
                            "duplicate key (the earlier one would be silently replaced)",
                            key_node.start_mark.line + 1,
                        )
                    )
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


def _with_lines(doc: _Document, problems: list[Problem]) -> list[Problem]:
    return [
        p if p.line is not None else Problem(p.path, p.message, doc.line_of(p.path))
        for p in problems
    ]


def _schema_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        # pydantic adds the model/validator name to tagged locations; keep the document path.
        path = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(Problem(path, message))
    return problems


def check_text(
    text: str, *, catalogue: FactCatalogue | None = None
) -> tuple[PathwayDefinition | None, list[Problem]]:
    """Parse and validate a definition; return it (or None) and every problem found."""
    doc = _Document(text)
    if doc.data is None:
        return None, doc.problems or [Problem((), "the document is empty", 1)]
    if not isinstance(doc.data, dict):
        return None, [*doc.problems, Problem((), "a pathway definition is a mapping", 1)]
    try:
        definition = PathwayDefinition.model_validate(doc.data)
    except ValidationError as exc:
        return None, _with_lines(doc, [*doc.problems, *_schema_problems(exc)])
    problems = [*doc.problems, *validate_definition(definition, catalogue=catalogue)]
    return definition, _with_lines(doc, problems)


def load_text(
    text: str, *, source: str = "<text>", catalogue: FactCatalogue | None = None
) -> PathwayDefinition:
    definition, problems = check_text(text, catalogue=catalogue)
    if problems or definition is None:
        raise DefinitionError(source, problems)
    return definition


def load_definition(
    path: str | Path, *, catalogue: FactCatalogue | None = None
) -> PathwayDefinition:
    path = Path(path)
    return load_text(path.read_text(encoding="utf-8"), source=str(path), catalogue=catalogue)


def check_file(
    path: str | Path, *, catalogue: FactCatalogue | None = None
) -> tuple[PathwayDefinition | None, list[Problem]]:
    return check_text(Path(path).read_text(encoding="utf-8"), catalogue=catalogue)
