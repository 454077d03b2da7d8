"""A set of loaded pathway definitions, looked up by key and version."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from workflows.definition import PathwayDefinition
from workflows.errors import DefinitionError, Problem, WorkflowError
from workflows.facts import FactCatalogue
from workflows.loader import load_definition
from workflows.validation import validate_migration


class UnknownPathway(WorkflowError):
    pass


class Registry:
    def __init__(self, definitions: Iterable[PathwayDefinition] = ()) -> None:
        self._by_ref: dict[tuple[str, int], PathwayDefinition] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: PathwayDefinition) -> None:
        ref = (definition.key, definition.version)
        existing = self._by_ref.get(ref)
        if existing is not None and existing != definition:
            raise WorkflowError(
                f"{definition.ref} is defined twice with different content; a published version "
                "is immutable: give the change a new version number"
            )
        self._by_ref[ref] = definition

    def get(self, key: str, version: int | None = None) -> PathwayDefinition:
        """A definition by key and version; without a version, the latest one."""
        if version is None:
            versions = [v for (k, v) in self._by_ref if k == key]
            if not versions:
                raise UnknownPathway(f"no pathway '{key}'")
            version = max(versions)
        try:
            return self._by_ref[(key, version)]
        except KeyError:
            raise UnknownPathway(f"no pathway '{key}' version {version}") from None

    def __iter__(self) -> Iterator[PathwayDefinition]:
        return iter(sorted(self._by_ref.values(), key=lambda d: (d.key, d.version)))

    def __len__(self) -> int:
        return len(self._by_ref)


def load_directories(
    directories: Iterable[Path], *, catalogue: FactCatalogue | None = None
) -> Registry:
    """Load every `*.yaml` under the directories; all problems of all files are raised together."""
    registry = Registry()
    errors: list[DefinitionError] = []
    for directory in directories:
        for path in sorted(Path(directory).glob("**/*.yaml")):
            try:
                registry.add(load_definition(path, catalogue=catalogue))
            except DefinitionError as exc:
                errors.append(exc)
    if errors:
        raise DefinitionError(
            ", ".join(e.source for e in errors), [p for e in errors for p in e.problems]
        )
    problems = migration_problems(registry)
    if problems:
        raise DefinitionError("migrations", problems)
    return registry


def migration_problems(registry: Registry) -> list[Problem]:
    """Every migration of every definition checked against the earlier version it names (which
    must be published too)."""
    problems: list[Problem] = []
    for definition in registry:
        for index, spec in enumerate(definition.migrations):
            try:
                old = registry.get(definition.key, spec.source)
            except UnknownPathway:
                problems.append(
                    Problem(
                        (definition.ref, "migrations", index, "from"),
                        f"version {spec.source} of '{definition.key}' is not published",
                    )
                )
                continue
            problems += [
                Problem((definition.ref, *p.path), p.message, p.line)
                for p in validate_migration(old, definition, spec, index=index)
            ]
    return problems
