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

from carehub.instruments.definition import InstrumentDefinition, definition_problems
from workflows.errors import Problem, ProblemsError
from workflows.yamldoc import located, parse

_FILE_NAME = re.compile(r"^(?P<key>[a-z][a-z0-9_]*)\.v(?P<version>[0-9]+)\.yaml$")


class InstrumentError(Exception):
    """Base class of the instrument library's errors."""


class InstrumentDefinitionError(ProblemsError, InstrumentError):
    """A definition is invalid; `problems` lists every problem found."""

    what = "instrument definition"


class LibraryError(InstrumentError):
    """One or more files of the library are invalid; `errors` holds each file's problems."""

    def __init__(self, errors: list[InstrumentDefinitionError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UnknownInstrument(InstrumentError, LookupError):
    pass


def check_text(text: str) -> tuple[InstrumentDefinition | None, list[Problem]]:
    """Parse and validate a definition; return it (or None) and every problem found."""
    definition, doc, problems = parse(text, InstrumentDefinition, what="an instrument definition")
    if definition is None:
        return None, problems
    return definition, located(doc, [*problems, *definition_problems(definition)])


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
