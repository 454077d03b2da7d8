"""`manage.py pathway validate|diagram|list|simulate|migrate`: pathway definitions from the command
line. `simulate` is the simulator's (carehub.simulation), registered with
`carehub.pathways.subcommands`."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from carehub.core.management.definition_files import add_validate_parser, validate_files
from carehub.pathways.migration_command import add_migrate_arguments, run_migrate
from carehub.pathways.registry import registry
from carehub.pathways.subcommands import SUBCOMMANDS
from workflows import (
    DefinitionError,
    PathwayDefinition,
    Problem,
    UnknownPathway,
    check_file,
    mermaid,
)
from workflows.loader import load_definition
from workflows.validation import validate_migration


class Command(BaseCommand):
    help = "Validate, draw and list pathway definitions."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add_validate_parser(sub)
        diagram = sub.add_parser("diagram", help="Write a pathway as a Mermaid state diagram.")
        diagram.add_argument("pathway", help="a published pathway key, or a definition file")
        diagram.add_argument("--version", type=int, dest="pathway_version", default=None)
        diagram.add_argument(
            "--output", "-o", type=Path, default=None, help="file (default: stdout)"
        )
        sub.add_parser("list", help="List the published pathways.")
        for name, subcommand in SUBCOMMANDS.items():
            subcommand.add_arguments(sub.add_parser(name, help=subcommand.help))
        migrate = sub.add_parser(
            "migrate",
            help="Move running enrolments to a new version: a dry-run report, apply, roll back.",
        )
        add_migrate_arguments(migrate)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "validate":
            self.validate(options["files"])
        elif action == "diagram":
            self.diagram(options["pathway"], options["pathway_version"], options["output"])
        elif action in SUBCOMMANDS:
            SUBCOMMANDS[action].run(self, options, self._definition)
        elif action == "migrate":
            run_migrate(self, options)
        else:
            for definition in registry():
                tracks = ", ".join(definition.tracks)
                self.stdout.write(
                    f"{definition.key}  v{definition.version}  {definition.title}  [{tracks}]"
                )

    def validate(self, files: list[Path]) -> None:
        loaded = {}
        for path in files:
            if path.is_file():
                definition, problems = check_file(path)
                if definition is not None and not problems:
                    loaded[(definition.key, definition.version)] = definition

        def check(path: Path) -> tuple[PathwayDefinition | None, list[Problem]]:
            definition, problems = check_file(path)
            if definition is not None and not problems:
                problems = self._migration_problems(definition, loaded)
            return definition, problems

        validate_files(self, files, check, noun="definition")

    def _migration_problems(
        self, definition: PathwayDefinition, loaded: dict[tuple[str, int], PathwayDefinition]
    ) -> list[Problem]:
        """Each migration checked against the earlier version: one of the files given, else the
        published one (a version that is neither is a problem)."""
        problems: list[Problem] = []
        for index, spec in enumerate(definition.migrations):
            old = loaded.get((definition.key, spec.source))
            if old is None:
                try:
                    old = registry().get(definition.key, spec.source)
                except UnknownPathway:
                    problems.append(
                        Problem(
                            ("migrations", index, "from"),
                            f"version {spec.source} of '{definition.key}' is neither given nor "
                            "published",
                        )
                    )
                    continue
            problems += validate_migration(old, definition, spec, index=index)
        return problems

    def diagram(self, pathway: str, version: int | None, output: Path | None) -> None:
        definition = self._definition(pathway, version)
        text = mermaid(definition)
        if output is None:
            self.stdout.write(text, ending="")
        else:
            output.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {definition.ref} to {output}")

    def _definition(self, pathway: str, version: int | None) -> PathwayDefinition:
        path = Path(pathway)
        if path.suffix in (".yaml", ".yml"):
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            try:
                return load_definition(path)
            except DefinitionError as exc:
                raise CommandError(str(exc)) from exc
        try:
            return registry().get(pathway, version)
        except UnknownPathway as exc:
            known = ", ".join(sorted({d.key for d in registry()})) or "none"
            raise CommandError(f"{exc} (published: {known})") from exc
