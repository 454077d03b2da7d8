"""Definition validation: one broken definition per rule, each reported at its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflows.conftest import DEFINITIONS
from workflows import DefinitionError, Problem, check_text, load_text

VALID = """\
key: mini
version: 1
title: Minimal
roles: [physician, coordinator]
thresholds:
  relief: {default: 50, source: "ASRA 2020"}
events:
  go: {}
  result: {roles: [coordinator, physician], session: pt}
  stop: {roles: [coordinator], requires_reason: true}
tracks:
  main:
    initial: start
    stages: [early, late]
    states:
      start: {stage: early}
      procedure: {stage: late, invasive: true}
      done: {final: true}
    transitions:
      - from: start
        event: go
        to: procedure
        guard: nrs.latest >= 5
        approval: {roles: [physician]}
      - from: procedure
        event: result
        to: done
        guard: mbb1.relief_pct >= threshold.relief
        effects:
          - create_task: {discipline: coordinator, title: "Book follow-up"}
      - {from: "*", event: stop, to: done}
    timers:
      - {name: nudge, state: start, after: 2w, event: go}
"""


def problems_of(text: str) -> list[Problem]:
    _, problems = check_text(text)
    return problems


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def test_the_valid_definition_has_no_problems() -> None:
    assert problems_of(VALID) == []


def test_shipped_example_definitions_are_valid() -> None:
    for path in sorted(Path(DEFINITIONS).glob("*.yaml")):
        assert problems_of(path.read_text()) == [], path


# (replace this, with that, expected location, expected message fragment, line containing)
BROKEN = [
    (
        "    initial: start",
        "    initial: begin",
        "tracks.main.initial",
        "unknown state 'begin'",
        "initial: begin",
    ),
    (
        "        to: procedure",
        "        to: surgery",
        "tracks.main.transitions[0].to",
        "unknown state 'surgery'",
        "to: surgery",
    ),
    (
        "      - from: procedure",
        "      - from: operating",
        "tracks.main.transitions[1].from",
        "unknown state 'operating'",
        "from: operating",
    ),
    (
        "        event: result",
        "        event: outcome",
        "tracks.main.transitions[1].event",
        "unknown event 'outcome'",
        "event: outcome",
    ),
    (
        "guard: nrs.latest >= 5",
        "guard: nrs.lastest >= 5",
        "tracks.main.transitions[0].guard",
        "unknown fact 'nrs.lastest'",
        "nrs.lastest",
    ),
    (
        "threshold.relief",
        "threshold.releif",
        "tracks.main.transitions[1].guard",
        "unknown threshold",
        "threshold.releif",
    ),
    (
        "guard: nrs.latest >= 5",
        "guard: nrs.latest >= (",
        "tracks.main.transitions[0].guard",
        "does not parse",
        "nrs.latest >= (",
    ),
    (
        "approval: {roles: [physician]}",
        "approval: {roles: [surgeon]}",
        "tracks.main.transitions[0].approval.roles",
        "unknown role 'surgeon'",
        "surgeon",
    ),
    (
        "        approval: {roles: [physician]}\n",
        "",
        "tracks.main.transitions[0].approval",
        "is invasive: a transition into it needs an approval gate",
        "- from: start",
    ),
    (
        "{name: nudge, state: start,",
        "{name: nudge, state: waiting,",
        "tracks.main.timers[0].state",
        "timer on unknown state 'waiting'",
        "name: nudge",
    ),
    (
        "after: 2w, event: go}",
        "after: 2w, event: poke}",
        "tracks.main.timers[0].event",
        "unknown event 'poke'",
        "name: nudge",
    ),
    (
        "after: 2w",
        "after: 3 months",
        "tracks.main.timers[0].after",
        "is not a duration",
        "name: nudge",
    ),
    (
        "discipline: coordinator",
        "discipline: janitor",
        "tracks.main.transitions[1].effects[0].create_task.discipline",
        "unknown role 'janitor'",
        "janitor",
    ),
    (
        "      procedure: {stage: late,",
        "      procedure: {stage: middle,",
        "tracks.main.states.procedure.stage",
        "unknown stage 'middle'",
        "stage: middle",
    ),
    (
        "      done: {final: true}",
        "      done: {final: true}\n      orphan: {final: true}",
        "tracks.main.states.orphan",
        "unreachable from 'start'",
        "orphan:",
    ),
    (
        "      done: {final: true}",
        "      done: {final: true}\n      limbo: {}",
        "tracks.main.states.limbo",
        "unreachable from 'start'",
        "limbo:",
    ),
    (
        "      done: {final: true}",
        "      done: {}",
        "tracks.main",
        "no final state can be reached",
        "  main:",
    ),
    (
        '      - {from: "*", event: stop, to: done}',
        '      - {from: "*", event: stop, to: done}\n      - {from: done, event: go, to: start}',
        "tracks.main.transitions[3].from",
        "nothing leaves a final state",
        "from: done",
    ),
    (
        '  relief: {default: 50, source: "ASRA 2020"}',
        "  relief: {default: 50}",
        "thresholds.relief.source",
        "Field required",
        "relief: {default: 50}",
    ),
    ("  go: {}", "  go: {}\n  approve: {}", "events.approve", "built in", "approve: {}"),
    ("  go: {}", "  go: {}\n  go: {}  # again", "events.go", "duplicate key", "# again"),
    (
        "    initial: start",
        "    initial: start\n    colour: blue",
        "tracks.main.colour",
        "unknown key",
        "colour: blue",
    ),
    (
        "          - create_task:",
        "          - notify: {to: [patient], message: hi}\n            create_task:",
        "tracks.main.transitions[1].effects[0]",
        "exactly one of",
        "- notify:",
    ),
    ("version: 1", "version: 0", "version", "greater than or equal to 1", "version: 0"),
    # Who may send each event is declared.
    (
        "  stop: {roles: [coordinator], requires_reason: true}",
        "  stop: {}",
        "events.stop",
        "say who may send it",
        "stop: {}",
    ),
    (
        "  stop: {roles: [coordinator], requires_reason: true}",
        "  stop: {roles: [nurse]}",
        "events.stop.roles",
        "unknown role 'nurse'",
        "stop: {roles: [nurse]}",
    ),
    (
        "  go: {}",
        "  go: {roles: [physician]}",
        "events.go.roles",
        "raised by the pathway itself",
        "go: {roles: [physician]}",
    ),
    (
        "  go: {}",
        "  go: {requires_reason: true}",
        "events.go",
        "for events people send",
        "go: {requires_reason: true}",
    ),
    (
        "  stop: {roles: [coordinator], requires_reason: true}",
        "  stop: {roles: [coordinator], session: pt}",
        "events.stop.session",
        "already reports pt sessions",
        "stop: {roles: [coordinator], session: pt}",
    ),
    (
        "        to: procedure\n",
        "",
        "tracks.main.transitions[0].approval",
        "internal transition (no 'to') cannot be gated",
        "approval: {roles: [physician]}",
    ),
]


@pytest.mark.parametrize(("old", "new", "location", "message", "line_text"), BROKEN)
def test_each_rule_is_reported_with_its_location(
    old: str, new: str, location: str, message: str, line_text: str
) -> None:
    assert old in VALID
    text = VALID.replace(old, new, 1)
    problems = problems_of(text)
    matching = [p for p in problems if p.location.startswith(location) and message in p.message]
    assert matching, f"expected {location}: {message}; got {[str(p) for p in problems]}"
    assert matching[0].line == line_of(text, line_text)


def test_a_reachable_state_with_no_way_out_is_reported() -> None:
    text = VALID.replace("      done: {final: true}", "      done: {final: true}\n      limbo: {}")
    text = text.replace(
        '{from: "*", event: stop, to: done}', "{from: [start, procedure], event: stop, to: limbo}"
    )
    [problem] = problems_of(text)
    assert problem.location == "tracks.main.states.limbo"
    assert problem.message == "no way out: add a transition or mark it final: true"
    assert problem.line == line_of(text, "limbo: {}")


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = VALID.replace("to: procedure", "to: surgery").replace("event: result", "event: outcome")
    assert len(problems_of(text)) >= 2


def test_load_raises_with_all_problems_and_the_file_name() -> None:
    text = VALID.replace("to: procedure", "to: surgery")
    with pytest.raises(DefinitionError) as raised:
        load_text(text, source="mini.yaml")
    assert "mini.yaml:line" in str(raised.value)
    assert raised.value.problems


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("- a\n- b\n", "mapping"), ("key: [unclosed\n", "not valid YAML")],
)
def test_documents_that_are_not_definitions(text: str, message: str) -> None:
    problems = problems_of(text)
    assert any(message in p.message for p in problems)
