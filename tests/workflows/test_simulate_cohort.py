"""Cohort files for the simulator: shape, located problems, names checked against a pathway."""

import random
from datetime import timedelta
from pathlib import Path

import pytest

from workflows.loader import load_definition
from workflows.simulate.cohort import (
    CohortError,
    draw,
    draw_duration,
    load_cohort_text,
    validate_against,
)

ROOT = Path(__file__).resolve().parents[2]
PATHWAY = ROOT / "carehub" / "pathways" / "definitions" / "intractable-pain.v1.yaml"
BUILTIN = ROOT / "carehub" / "simulation" / "cohorts" / "intractable-pain.yaml"

SMALL = """\
name: small
pathway: intractable-pain
start: 2026-01-05T09:00:00Z
clinic:
  reactions:
    ladder.intake:
      - {after: [1d, 3d], send: intake_completed}
archetypes:
  - name: only
    share: 1
    time_zones: {Europe/Berlin: 1}
    scores:
      peg: {start: [6, 8], weekly: -0.2, maximum: 10}
"""


def test_the_builtin_cohort_loads_and_names_only_what_the_pathway_has() -> None:
    cohort = load_cohort_text(BUILTIN.read_text(), source=str(BUILTIN))
    assert validate_against(cohort, load_definition(PATHWAY)) == []
    assert cohort.pathway == "intractable-pain"
    assert len(cohort.archetypes) == 8


def test_defaults_and_drawn_values() -> None:
    cohort = load_cohort_text(SMALL)
    archetype = cohort.archetypes[0]
    assert cohort.enrol_over == timedelta(weeks=4)
    assert cohort.reactions(archetype, "ladder.intake")[0].send == "intake_completed"
    assert cohort.reactions(archetype, "ladder.mbb1") == []
    rng = random.Random(1)
    after = cohort.clinic.reactions["ladder.intake"][0].after
    for _ in range(50):
        assert timedelta(days=1) <= draw_duration(after, rng) <= timedelta(days=3)
        assert 6 <= draw(archetype.scores["peg"].start, rng) <= 8
        assert draw({"a": 1, "b": 0}, rng) == "a"
    assert draw(0.5, rng) == 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("share: 1", "share: 0"), "archetypes[0].share: Input should be greater than 0"),
        (("Europe/Berlin", "Europe/Berlinn"), "unknown time zone 'Europe/Berlinn'"),
        (("[1d, 3d]", "[3d, 1d]"), "a duration range's low end comes first"),
        (("start: [6, 8]", "start: [8, 6]"), "a range's low end comes first"),
        (("start: 2026-01-05T09:00:00Z", "start: 2026-01-05T09:00:00"), "needs a time zone"),
        (("    share: 1\n", "    share: 1\n    answer_rte: 1\n"), "answer_rte: unknown key"),
    ],
)
def test_shape_problems_are_reported_at_their_line(change: tuple[str, str], message: str) -> None:
    text = SMALL.replace(*change)
    with pytest.raises(CohortError) as raised:
        load_cohort_text(text, source="c.yaml")
    assert message in str(raised.value)
    assert "c.yaml:line " in str(raised.value)


def test_names_the_pathway_lacks_are_problems() -> None:
    text = SMALL.replace("ladder.intake:", "ladder.intak:").replace(
        "send: intake_completed", "send: intake_complete"
    )
    problems = validate_against(load_cohort_text(text), load_definition(PATHWAY))
    messages = [p.message for p in problems]
    assert "intractable-pain@1 has no state 'ladder.intak'" in messages
    assert "intractable-pain@1 has no event 'intake_complete'" in messages
