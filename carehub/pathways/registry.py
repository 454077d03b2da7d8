"""The pathway definitions this carehub serves, loaded once per process from PATHWAY_DIRS."""

from functools import cache
from pathlib import Path

from django.conf import settings

from workflows import PathwayDefinition, Registry, load_directories


def pathway_dirs() -> list[Path]:
    return [Path(p) for p in settings.PATHWAY_DIRS]


@cache
def registry() -> Registry:
    """Every published definition; DefinitionError lists every problem if any is invalid."""
    return load_directories(pathway_dirs())


def definition_get(key: str, version: int | None = None) -> PathwayDefinition:
    return registry().get(key, version)


def session_roles(session: str) -> frozenset[str]:
    """The roles that may log a therapy session of this kind (`pt`, `cbt`): those the published
    definitions name for the event reporting it (`session: pt`); empty when none does."""
    roles: frozenset[str] = frozenset()
    for definition in registry():
        roles |= definition.session_roles(session)
    return roles
