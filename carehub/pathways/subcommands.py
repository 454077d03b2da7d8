"""The subcommands other apps add to `manage.py pathway`, registered by name from their
AppConfig.ready() (ADR 0032): `simulate` (carehub.simulation), which composes check-ins and
messaging above pathways, so the command does not import it."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand

from workflows import PathwayDefinition

# A published pathway key or a definition file, and a version → the definition (the command's).
DefinitionFor = Callable[[str, int | None], PathwayDefinition]


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[ArgumentParser], None]
    run: Callable[[BaseCommand, dict[str, Any], DefinitionFor], object]


# Name → subcommand, in registration order (INSTALLED_APPS order).
SUBCOMMANDS: dict[str, Subcommand] = {}


def register_pathway_subcommand(
    name: str,
    *,
    help: str,
    add_arguments: Callable[[ArgumentParser], None],
    run: Callable[[BaseCommand, dict[str, Any], DefinitionFor], object],
) -> None:
    """`manage.py pathway <name>` (registering again replaces it)."""
    SUBCOMMANDS[name] = Subcommand(help=help, add_arguments=add_arguments, run=run)
