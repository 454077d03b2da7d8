"""Reading instrument definitions from YAML, with every problem reported at its path and line.

`check_text` / `check_file` return the definition (or None) and every problem found, shape and
meaning; `load_*` raise `InstrumentDefinitionError` instead. `load_directories` builds a
`Library` from every `*.yaml` file, refusing a file not named `KEY.vVERSION.yaml` after its
content and two files publishing the same key and version. Pure Python: no Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from carehub.instruments.definition import InstrumentDefinition, definition_problems
from workflows.errors import Problem

_Path = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FILE_NAME = re.compile(r"^(?P<key>[a-z][a-z0-9_]*)\.v(?P<version>[0-9]+)\.yaml$")


class InstrumentError(Exception):
    """Base class of the instrument library's errors."""


class InstrumentDefinitionError(InstrumentError):
    """A definition is invalid; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}:{p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in instrument definition {source}:\n{lines}")


class LibraryError(InstrumentError):
    """One or more files of the library are invalid; `errors` holds each file's problems."""

    def __init__(self, errors: list[InstrumentDefinitionError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UnknownInstrument(InstrumentError, LookupError):
    pass


class _Document:
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


def _located(doc: _Document, problems: Iterable[Problem]) -> list[Problem]:
    return [
        p if p.line is not None else Problem(p.path, p.message, doc.line_of(p.path))
        for p in problems
    ]


def _schema_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(Problem(path, message))
    return problems


def check_text(text: str) -> tuple[InstrumentDefinition | None, list[Problem]]:
    """Parse and validate a definition; return it (or None) and every problem found."""
    doc = _Document(text)
    if doc.data is None:
        return None, doc.problems or [Problem((), "the document is empty", 1)]
    if not isinstance(doc.data, dict):
        return None, [*doc.problems, Problem((), "an instrument definition is a mapping", 1)]
    try:
        definition = InstrumentDefinition.model_validate(doc.data)
    except ValidationError as exc:
        return None, _located(doc, [*doc.problems, *_schema_problems(exc)])
    return definition, _located(doc, [*doc.problems, *definition_problems(definition)])


def check_file(
    path: str | Path, *, require_name: bool = False
) -> tuple[InstrumentDefinition | None, list[Problem]]:
    """`check_text` of a file; with `require_name`, the name must be `KEY.vVERSION.yaml`."""
    path = Path(path)
    definition, problems = check_text(path.read_text(encoding="utf-8"))
    if require_name and definition is not None:
        match = _FILE_NAME.match(path.name)
        expected = f"{definition.key}.v{definition.version}.yaml"
        if match is None or path.name != expected:
            problems = [*problems, Problem((), f"the file must be named {expected}", 1)]
    return definition, problems


def load_text(text: str, *, source: str = "<text>") -> InstrumentDefinition:
    definition, problems = check_text(text)
    if problems or definition is None:
        raise InstrumentDefinitionError(source, problems)
    return definition


def load_file(path: str | Path, *, require_name: bool = False) -> InstrumentDefinition:
    definition, problems = check_file(path, require_name=require_name)
    if problems or definition is None:
        raise InstrumentDefinitionError(str(path), problems)
    return definition


class Library:
    """Instrument definitions by key and version."""

    def __init__(self, definitions: Iterable[InstrumentDefinition] = ()) -> None:
        self._by_ref: dict[tuple[str, int], InstrumentDefinition] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: InstrumentDefinition) -> None:
        ref = (definition.key, definition.version)
        existing = self._by_ref.get(ref)
        if existing is not None and existing != definition:
            raise InstrumentError(
                f"{definition.ref} is defined twice with different content; a published version "
                "is immutable: give the change a new version number"
            )
        self._by_ref[ref] = definition

    def get(self, key: str, version: int | None = None) -> InstrumentDefinition:
        """A definition by key and version; without a version, the latest one."""
        if version is None:
            versions = [v for (k, v) in self._by_ref if k == key]
            if not versions:
                raise UnknownInstrument(f"no instrument '{key}'")
            version = max(versions)
        try:
            return self._by_ref[(key, version)]
        except KeyError:
            raise UnknownInstrument(f"no instrument '{key}' version {version}") from None

    def latest(self) -> list[InstrumentDefinition]:
        """The latest version of each instrument, by key."""
        return [self.get(key) for key in sorted(self.keys())]

    def keys(self) -> set[str]:
        return {key for key, _ in self._by_ref}

    def __iter__(self) -> Iterator[InstrumentDefinition]:
        return iter(sorted(self._by_ref.values(), key=lambda d: (d.key, d.version)))

    def __len__(self) -> int:
        return len(self._by_ref)


def load_directories(directories: Iterable[Path]) -> Library:
    """Every `*.yaml` under the directories; all problems of all files raised together."""
    library = Library()
    errors: list[InstrumentDefinitionError] = []
    sources: dict[tuple[str, int], Path] = {}
    for directory in directories:
        for path in sorted(Path(directory).glob("**/*.yaml")):
            try:
                definition = load_file(path, require_name=True)
            except InstrumentDefinitionError as exc:
                errors.append(exc)
                continue
            ref = (definition.key, definition.version)
            if ref in sources:
                message = f"{definition.ref} is already published by {sources[ref]}"
                errors.append(InstrumentDefinitionError(str(path), [Problem((), message, 1)]))
                continue
            sources[ref] = path
            library.add(definition)
    if errors:
        raise LibraryError(errors)
    return library
