"""Reading pathway definitions from YAML, with every problem reported at its line.

`load_definition` returns a valid `PathwayDefinition` or raises `DefinitionError` carrying all
problems found (shape and semantics), each with its path in the document and its line number.
"""

from __future__ import annotations

from pathlib import Path

from workflows.definition import PathwayDefinition
from workflows.errors import DefinitionError, Problem
from workflows.facts import FactCatalogue
from workflows.validation import validate_definition
from workflows.yamldoc import located, parse


def check_text(
    text: str, *, catalogue: FactCatalogue | None = None
) -> tuple[PathwayDefinition | None, list[Problem]]:
    """Parse and validate a definition; return it (or None) and every problem found."""
    definition, doc, problems = parse(text, PathwayDefinition, what="a pathway definition")
    if definition is None:
        return None, problems
    problems = [*problems, *validate_definition(definition, catalogue=catalogue)]
    return definition, located(doc, problems)


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
