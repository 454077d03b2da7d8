"""README.md shows the role-by-operation matrix exactly as carehub.care_access.OPERATIONS
decides it (regenerate with `permission_matrix_markdown()` when the matrix changes)."""

from __future__ import annotations

from pathlib import Path

from carehub.care_access import (
    OPERATIONS,
    Operation,
    event_permission_markdown,
    permission_matrix_markdown,
)
from carehub.pathways.registry import definition_get

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> str:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Operation | "))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end])


def test_the_readme_matrix_is_the_one_care_access_enforces() -> None:
    assert readme_table() == permission_matrix_markdown(), (
        "README.md's permission matrix differs from carehub.care_access.OPERATIONS: paste "
        "permission_matrix_markdown() into the REST API section."
    )


def test_the_table_has_a_row_per_operation() -> None:
    rows = readme_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [operation.value for operation in Operation]
    assert len(rows) == len(OPERATIONS)


def test_the_readme_event_table_is_the_built_in_definitions_own() -> None:
    definition = definition_get("intractable-pain")
    table = event_permission_markdown(definition)
    assert table in README.read_text(encoding="utf-8"), (
        "README.md's table of who may send which event differs from the definition: paste "
        "event_permission_markdown(definition_get('intractable-pain')) into the REST API section."
    )
