import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command

from carehub.pathways import registry as registry_module

EXAMPLES = Path(__file__).resolve().parent.parent / "workflows" / "definitions"
EXAMPLE = EXAMPLES / "stepped_care.yaml"


@pytest.fixture
def published(settings, tmp_path: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """PATHWAY_DIRS pointing at a scratch directory holding the example definition."""
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    settings.PATHWAY_DIRS = [tmp_path]
    registry_module.registry.cache_clear()
    yield tmp_path
    registry_module.registry.cache_clear()


def test_validate_a_valid_file(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("pathway", "validate", str(EXAMPLE))
    assert "stepped-care-example@1 is valid" in capsys.readouterr().out


def test_validate_prints_every_problem_with_its_line_and_fails(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    text = EXAMPLE.read_text().replace("to: maintenance\n", "to: maintenence\n", 1)
    text = text.replace("guard: pain.months >= 6", "guard: pain.month >= 6")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    with pytest.raises(CommandError, match="1 of 1 definition file"):
        call_command("pathway", "validate", str(broken))
    err = capsys.readouterr().err
    assert "unknown state 'maintenence'" in err
    assert "unknown fact 'pain.month'" in err
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "pain.month >= 6" in row)
    assert f"{broken}:line {line}: tracks.ladder.transitions[0].guard" in err


def test_validate_from_the_shell_exits_non_zero(tmp_path: Path) -> None:
    import subprocess
    import sys

    broken = tmp_path / "broken.yaml"
    broken.write_text("key: x\nversion: 1\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "pathway", "validate", str(broken)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "title: Field required" in result.stderr
    assert "tracks: Field required" in result.stderr


def test_diagram_by_key_writes_mermaid(published: Path, tmp_path: Path) -> None:
    out = tmp_path / "diagram.mmd"
    call_command("pathway", "diagram", "stepped-care-example", "--output", str(out))
    text = out.read_text()
    assert text.startswith("stateDiagram-v2")
    assert "ladder__block" in text


def test_diagram_of_a_file_to_stdout(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("pathway", "diagram", str(EXAMPLE))
    assert capsys.readouterr().out.startswith("stateDiagram-v2")


def test_diagram_of_an_unknown_key_names_the_published_ones(published: Path) -> None:
    with pytest.raises(CommandError, match="published: stepped-care-example"):
        call_command("pathway", "diagram", "nope")


def test_list(published: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("pathway", "list")
    assert "stepped-care-example  v1" in capsys.readouterr().out


def test_system_check_reports_a_broken_published_definition(published: Path) -> None:
    assert list(run_checks(tags=["pathways"])) == []
    (published / "broken.yaml").write_text(
        EXAMPLE.read_text()
        .replace("version: 1", "version: 2")
        .replace("initial: intake", "initial: triage")
    )
    messages = run_checks(tags=["pathways"])
    assert [m.id for m in messages] == ["pathways.E001"]
    assert "unknown state 'triage'" in messages[0].msg


@pytest.mark.parametrize("role", ["surgeon", "patient"])
def test_system_check_reports_a_role_carehub_does_not_have(published: Path, role: str) -> None:
    """`patient` is an account role, never an approver or a task's discipline."""
    (published / EXAMPLE.name).write_text(
        EXAMPLE.read_text().replace("roles: [coordinator,", f"roles: [{role}, coordinator,")
    )
    messages = run_checks(tags=["pathways"])
    assert [m.id for m in messages] == ["pathways.E002"]
    assert f"'{role}'" in messages[0].msg


def test_validate_checks_a_migration_against_the_earlier_version(
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    from tests.workflows.test_migration import V1, v2

    old, new = tmp_path / "mig.v1.yaml", tmp_path / "mig.v2.yaml"
    old.write_text(V1)
    new.write_text(v2(migrations="  - {from: 1, timers: recompute}\n"))
    call_command("pathway", "validate", str(old), str(new))
    assert "mig@2 is valid" in capsys.readouterr().out
    new.write_text(v2(migrations="  - from: 1\n    states: {ladder: {review: block}}\n"))
    with pytest.raises(CommandError, match="1 of 2 definition file"):
        call_command("pathway", "validate", str(old), str(new))
    assert "never enters an invasive state" in capsys.readouterr().err
    with pytest.raises(CommandError, match="1 of 1 definition file"):
        call_command("pathway", "validate", str(new))  # version 1 is neither given nor published
    assert "neither given nor published" in capsys.readouterr().err
