"""The Django side: registry, system check and the `instrument` command."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command

from carehub.instruments import checks
from carehub.instruments.definition import InstrumentDefinition, Item
from carehub.instruments.loader import Library, UnknownInstrument
from carehub.instruments.registry import (
    instrument_get,
    instrument_score,
    instruments,
    patient_texts,
)

from .conftest import LIBRARY_DIR
from .samples import TOY

ROOT = Path(__file__).resolve().parents[3]


def instrument_errors() -> list[str]:
    return [f"{m.id}: {m.msg}" for m in run_checks(tags=["instruments"])]


# --- registry --------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_registry")
def test_instrument_get_serves_the_latest_version_by_default(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert instrument_get("peg").ref == "peg@1"
    text = (LIBRARY_DIR / "peg.v1.yaml").read_text().replace("version: 1", "version: 2", 1)
    (tmp_path / "peg.v2.yaml").write_text(text)
    settings.INSTRUMENT_EXTRA_DIRS = [tmp_path]
    assert instrument_get("peg").ref == "peg@2"
    assert instrument_get("peg", 1).ref == "peg@1"
    assert [d.ref for d in instruments() if d.key == "peg"] == ["peg@1", "peg@2"]
    assert [d.ref for d in instruments(latest_only=True) if d.key == "peg"] == ["peg@2"]


@pytest.mark.usefixtures("fresh_registry")
def test_an_unknown_instrument_is_an_error() -> None:
    with pytest.raises(UnknownInstrument):
        instrument_get("sf36")


@pytest.mark.usefixtures("fresh_registry")
def test_the_clinic_overrides_patient_texts_in_settings(settings) -> None:  # type: ignore[no-untyped-def]
    settings.INSTRUMENT_PATIENT_TEXTS = {"crisis_resources": "Call 13 11 14 (Lifeline)."}
    assert patient_texts()["crisis_resources"] == "Call 13 11 14 (Lifeline)."
    assert "911" in patient_texts()["emergency"]  # not overridden: the default stays
    answers = {f"item{n}": 0 for n in range(1, 9)} | {"item9": 2}
    result = instrument_score("phq9", answers)
    assert result.red_flags[0].patient_message is not None
    assert result.red_flags[0].patient_message.endswith("Call 13 11 14 (Lifeline).")


# --- system check ----------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_registry")
def test_the_shipped_library_passes_the_system_check() -> None:
    assert instrument_errors() == []


@pytest.mark.usefixtures("fresh_registry")
def test_the_system_check_reports_every_problem_of_the_library(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "toy.v1.yaml").write_text(TOY.replace("rule: sum", "rule: median"))
    settings.INSTRUMENT_EXTRA_DIRS = [tmp_path]
    errors = instrument_errors()
    assert len(errors) == 1
    assert errors[0].startswith(f"instruments.E001: {tmp_path / 'toy.v1.yaml'}:line ")
    assert "scoring.rule" in errors[0]


def test_the_system_check_refuses_a_licensed_instrument_with_wording(monkeypatch, get) -> None:  # type: ignore[no-untyped-def]
    # The loader already refuses such a file; the check guards definitions from anywhere else.
    item = Item(key="section1", text="Section 1 of the licensed form", type="text", scored=False)
    odi: InstrumentDefinition = get("odi").model_copy(update={"items": (item,)})
    monkeypatch.setattr(checks, "load_directories", lambda dirs: Library([odi]))
    errors = instrument_errors()
    assert len(errors) == 1
    assert errors[0].startswith("instruments.E002: odi@1 is licensed but carries wording")


# --- the command -----------------------------------------------------------------------------


def test_validate_a_valid_file(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("instrument", "validate", str(LIBRARY_DIR / "phq9.v1.yaml"))
    assert "phq9@1 is valid" in capsys.readouterr().out


def test_validate_prints_every_problem_with_its_line_and_fails(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    text = TOY.replace("maximum: 12", "maximum: 13").replace("licence: free", "licence: paid")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CommandError, match="2 of 2 instrument file"):
        call_command("instrument", "validate", str(broken), str(missing))
    err = capsys.readouterr().err
    assert f"{broken}:line 5: licence:" in err
    assert f"{missing}: no such file" in err


def test_validate_from_the_shell_exits_non_zero(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: x\nversion: 1\n")
    result = _manage("instrument", "validate", str(broken))
    assert result.returncode == 1
    assert "title: Field required" in result.stderr
    assert "scoring: Field required" in result.stderr
    ok = _manage("instrument", "validate", str(LIBRARY_DIR / "peg.v1.yaml"))
    assert ok.returncode == 0, ok.stderr


def test_show_from_the_shell_exits_non_zero_for_an_unknown_key() -> None:
    result = _manage("instrument", "show", "sf36")
    assert result.returncode == 1
    assert "published: block_diary, bpi_interference" in result.stderr


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.usefixtures("fresh_registry")
def test_list(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("instrument", "list")
    out = capsys.readouterr().out
    assert "phq9  v1  free  PHQ-9" in out
    assert "odi  v1  licensed" in out
    assert "[recall: last 2 weeks; at most every 2w]" in out
    assert len(out.strip().splitlines()) == 12


@pytest.mark.usefixtures("fresh_registry")
def test_show_an_instrument(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("instrument", "show", "phq9")
    out = capsys.readouterr().out
    assert out.startswith("phq9@1: PHQ-9")
    assert "LOINC: panel 44249-1, total 44261-6" in out
    assert "- difficulty (choice) [not scored, optional]" in out
    assert "red flag phq9_item9_positive: item9 >= 1 -> immediate" in out
    assert "red flag phq9_item9_unanswered: item9 unanswered -> next_business_day" in out


@pytest.mark.usefixtures("fresh_registry")
def test_show_a_licensed_instrument_has_no_items(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("instrument", "show", "odi", "--version", "1")
    out = capsys.readouterr().out
    assert "items: none (licensed" in out
    assert "bands: >=0 minimal disability, >20 moderate disability" in out


@pytest.mark.usefixtures("fresh_registry")
def test_show_an_unknown_version_names_the_published_keys() -> None:
    with pytest.raises(CommandError, match="no instrument 'peg' version 9 \\(published: "):
        call_command("instrument", "show", "peg", "--version", "9")
