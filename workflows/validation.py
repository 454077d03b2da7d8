"""Load-time checks of a pathway definition's meaning (its shape is checked by the models).

Every rule reports each violation as a `Problem` with the path of the offending element, so a
definition author sees all problems at once, each at its place in the file.
"""

from __future__ import annotations

from collections import deque

from workflows.definition import (
    DAY_UNITS,
    RESERVED_EVENTS,
    EffectSpec,
    MigrationSpec,
    PathwayDefinition,
    TrackSpec,
)
from workflows.errors import Problem
from workflows.expressions import Vocabulary, compile_expression
from workflows.facts import STANDARD_FACTS, Fact, FactCatalogue

# Recipients of a notify effect besides the definition's staff roles.
NOTIFY_AUDIENCES = frozenset({"patient", "care_team"})


def catalogue_for(
    definition: PathwayDefinition, base: FactCatalogue | None = None
) -> FactCatalogue:
    own = {name: Fact(name, spec.type, spec.description) for name, spec in definition.facts.items()}
    return (base or STANDARD_FACTS).extended(own)


def vocabulary_for(
    definition: PathwayDefinition, catalogue: FactCatalogue | None = None
) -> Vocabulary:
    return Vocabulary(
        facts=frozenset(catalogue_for(definition, catalogue)),
        thresholds=frozenset(definition.thresholds),
        tracks={name: frozenset(track.states) for name, track in definition.tracks.items()},
    )


def validate_definition(
    definition: PathwayDefinition, *, catalogue: FactCatalogue | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    vocabulary = vocabulary_for(definition, catalogue)
    roles = set(definition.roles)

    for name in definition.events:
        if name in RESERVED_EVENTS:
            problems.append(
                Problem(
                    ("events", name), f"'{name}' is built in (approval gates); do not declare it"
                )
            )
    problems += _check_event_senders(definition, roles)
    for name in definition.facts:
        if name in STANDARD_FACTS:
            problems.append(
                Problem(("facts", name), "already a standard fact; do not redeclare it")
            )

    for track_name, track in definition.tracks.items():
        problems += _check_track(definition, track_name, track, vocabulary, roles)
    problems += _check_migrations(definition)
    return problems


def _check_timer_threshold(
    definition: PathwayDefinition, name: str | None, where: tuple[str | int, ...]
) -> list[Problem]:
    """A timer counted by a threshold names a known one, numeric, in days."""
    if name is None:
        return []
    spec = definition.thresholds.get(name)
    if spec is None:
        return [Problem(where, f"unknown threshold '{name}' (declare it under thresholds:)")]
    if isinstance(spec.default, bool) or not isinstance(spec.default, int | float):
        return [Problem(where, f"threshold '{name}' is not a number of days")]
    if spec.unit not in DAY_UNITS:
        return [Problem(where, f"threshold '{name}' must have `unit: days` to time a timer")]
    return []


def _check_migrations(definition: PathwayDefinition) -> list[Problem]:
    """What a migration spec can be checked against without the earlier version: it names an
    earlier version once, and its map names this version's tracks and states."""
    problems: list[Problem] = []
    seen: set[int] = set()
    for index, spec in enumerate(definition.migrations):
        where: tuple[str | int, ...] = ("migrations", index)
        if spec.source >= definition.version:
            problems.append(
                Problem((*where, "from"), f"migrates from version {spec.source}: not earlier")
            )
        if spec.source in seen:
            problems.append(Problem((*where, "from"), f"version {spec.source} named twice"))
        seen.add(spec.source)
        for track, mapping in spec.states.items():
            if track not in definition.tracks:
                problems.append(Problem((*where, "states", track), f"unknown track '{track}'"))
                continue
            states = definition.tracks[track].states
            for old, new in mapping.items():
                if new not in states:
                    problems.append(
                        Problem(
                            (*where, "states", track, old),
                            f"unknown state '{new}' in track '{track}' of version "
                            f"{definition.version}",
                        )
                    )
    return problems


def validate_migration(
    old: PathwayDefinition, new: PathwayDefinition, spec: MigrationSpec, *, index: int = 0
) -> list[Problem]:
    """The migration from `old` to `new` is complete and safe: every track of the old version
    is still there, every state of it maps (by the map, or by keeping its key) to a state of
    the new version, the map names old states only, and no state that was not invasive maps to
    an invasive one (a migration never enters an invasive state)."""
    problems: list[Problem] = []
    base: tuple[str | int, ...] = ("migrations", index)
    for track, mapping in spec.states.items():
        old_track = old.tracks.get(track)
        if old_track is None:
            continue  # reported as an unknown track unless the new version has it
        for mapped in mapping:
            if mapped not in old_track.states:
                problems.append(
                    Problem(
                        (*base, "states", track, mapped),
                        f"version {old.version} has no state '{mapped}' in track '{track}'",
                    )
                )
    for track_name, old_track in old.tracks.items():
        new_track = new.tracks.get(track_name)
        if new_track is None:
            problems.append(
                Problem(
                    (*base, "states"),
                    f"track '{track_name}' of version {old.version} is gone in version "
                    f"{new.version}: enrolments in it cannot migrate",
                )
            )
            continue
        for state_name, state in old_track.states.items():
            target = spec.target(track_name, state_name)
            where = (*base, "states", track_name, state_name)
            if target not in new_track.states:
                problems.append(
                    Problem(
                        where,
                        f"'{state_name}' has no state in version {new.version}: map it "
                        f"(states: {{{track_name}: {{{state_name}: ...}}}})",
                    )
                )
            elif new_track.states[target].invasive and not (
                state.invasive and target == state_name
            ):
                problems.append(
                    Problem(
                        where,
                        f"'{state_name}' maps to '{target}', an invasive state: a migration "
                        "never enters an invasive state",
                    )
                )
    return problems


def _check_track(
    definition: PathwayDefinition,
    track_name: str,
    track: TrackSpec,
    vocabulary: Vocabulary,
    roles: set[str],
) -> list[Problem]:
    base = ("tracks", track_name)
    problems: list[Problem] = []
    states = track.states

    if track.initial not in states:
        problems.append(Problem((*base, "initial"), f"unknown state '{track.initial}'"))

    for state_name, state in states.items():
        where: tuple[str | int, ...] = (*base, "states", state_name)
        if track.stages and state.stage is not None and state.stage not in track.stages:
            problems.append(
                Problem(
                    (*where, "stage"), f"unknown stage '{state.stage}' (stages: {track.stages})"
                )
            )
        for hook in ("on_enter", "on_exit"):
            for i, effect in enumerate(getattr(state, hook)):
                problems += _check_effect(definition, effect, (*where, hook, i), roles)

    for index, transition in enumerate(track.transitions):
        where = (*base, "transitions", index)
        for source in transition.source:
            if source != "*" and source not in states:
                problems.append(Problem((*where, "from"), f"unknown state '{source}'"))
            elif source != "*" and states[source].final:
                problems.append(
                    Problem((*where, "from"), f"'{source}' is final: nothing leaves a final state")
                )
        if transition.target is None:
            if transition.approval is not None:
                problems.append(
                    Problem(
                        (*where, "approval"), "an internal transition (no 'to') cannot be gated"
                    )
                )
        elif transition.target not in states:
            problems.append(Problem((*where, "to"), f"unknown state '{transition.target}'"))
        elif states[transition.target].invasive and transition.approval is None:
            problems.append(
                Problem(
                    (*where, "approval"),
                    f"'{transition.target}' is invasive: "
                    "a transition into it needs an approval gate",
                )
            )
        if transition.event not in definition.events:
            problems.append(Problem((*where, "event"), _unknown_event(transition.event)))
        if transition.guard is not None:
            _, errors = compile_expression(transition.guard, vocabulary)
            problems += [Problem((*where, "guard"), error) for error in errors]
        if transition.approval is not None:
            for role in transition.approval.roles:
                if role not in roles:
                    problems.append(
                        Problem((*where, "approval", "roles"), _unknown_role(role, roles))
                    )
        for i, effect in enumerate(transition.effects):
            problems += _check_effect(definition, effect, (*where, "effects", i), roles)

    seen_timers: set[str] = set()
    for index, timer in enumerate(track.timers):
        where = (*base, "timers", index)
        if timer.name in seen_timers:
            problems.append(Problem((*where, "name"), f"timer name '{timer.name}' used twice"))
        seen_timers.add(timer.name)
        if timer.state not in states:
            problems.append(Problem((*where, "state"), f"timer on unknown state '{timer.state}'"))
        elif states[timer.state].final:
            problems.append(Problem((*where, "state"), "a timer on a final state can never matter"))
        if timer.event not in definition.events:
            problems.append(Problem((*where, "event"), _unknown_event(timer.event)))
        problems += _check_timer_threshold(definition, timer.after_threshold, (*where, "after"))

    if track.initial in states:
        problems += _check_graph(track_name, track)
    return problems


def _check_event_senders(definition: PathwayDefinition, roles: set[str]) -> list[Problem]:
    """Who may send each event is declared: a person's event names its roles (known ones); the
    pathway's own events (timers, `send`, unless `manual`) name none, as nobody sends them."""
    problems = []
    internal = definition.internal_events
    sessions: dict[str, str] = {}
    for name, spec in definition.events.items():
        where = ("events", name)
        if name in internal:
            if spec.roles:
                problems.append(
                    Problem(
                        (*where, "roles"),
                        "raised by the pathway itself (a timer or `send`): nobody sends it; "
                        "remove `roles`, or mark it `manual: true` to let these roles send it too",
                    )
                )
            if spec.session is not None or spec.requires_reason:
                problems.append(
                    Problem(where, "`session` and `requires_reason` are for events people send")
                )
            continue
        if not spec.roles:
            problems.append(
                Problem(
                    where,
                    "say who may send it: `roles: [...]` "
                    f"(roles: {', '.join(sorted(roles)) or 'none declared'})",
                )
            )
        for role in spec.roles:
            if role not in roles:
                problems.append(Problem((*where, "roles"), _unknown_role(role, roles)))
        if spec.session is not None:
            if spec.session in sessions:
                problems.append(
                    Problem(
                        (*where, "session"),
                        f"'{sessions[spec.session]}' already reports {spec.session} sessions",
                    )
                )
            sessions[spec.session] = name
    return problems


def _check_graph(track_name: str, track: TrackSpec) -> list[Problem]:
    """Reachability from the initial state, ways out, and a final state that can be reached."""
    base = ("tracks", track_name, "states")
    states = track.states
    edges: dict[str, set[str]] = {name: set() for name in states}
    for transition in track.transitions:
        if transition.target is None or transition.target not in states:
            continue
        sources = states if "*" in transition.source else transition.source
        for source in sources:
            if source in states and not states[source].final:
                edges[source].add(transition.target)

    reachable = {track.initial}
    queue = deque([track.initial])
    while queue:
        for target in edges[queue.popleft()]:
            if target not in reachable:
                reachable.add(target)
                queue.append(target)

    problems = []
    for name, state in states.items():
        if name not in reachable:
            problems.append(Problem((*base, name), f"unreachable from '{track.initial}'"))
        if not state.final and not edges[name]:
            problems.append(
                Problem((*base, name), "no way out: add a transition or mark it final: true")
            )
    if not any(states[name].final for name in reachable):
        problems.append(
            Problem(("tracks", track_name), "no final state can be reached from the initial state")
        )
    return problems


def _check_effect(
    definition: PathwayDefinition, effect: EffectSpec, where: tuple[str | int, ...], roles: set[str]
) -> list[Problem]:
    problems = []
    if effect.send is not None and effect.send not in definition.events:
        problems.append(Problem((*where, "send"), _unknown_event(effect.send)))
    if effect.create_task is not None and effect.create_task.discipline not in roles:
        problems.append(
            Problem(
                (*where, "create_task", "discipline"),
                _unknown_role(effect.create_task.discipline, roles),
            )
        )
    if effect.notify is not None:
        for recipient in effect.notify.to:
            if recipient not in roles and recipient not in NOTIFY_AUDIENCES:
                problems.append(
                    Problem(
                        (*where, "notify", "to"),
                        _unknown_role(recipient, roles | NOTIFY_AUDIENCES),
                    )
                )
    if effect.stop_checkins is not None:
        stop = effect.stop_checkins
        if stop.instrument is None and stop.series is None:
            problems.append(Problem((*where, "stop_checkins"), "name an instrument or a series"))
    return problems


def _unknown_event(name: str) -> str:
    return f"unknown event '{name}' (declare it under events:)"


def _unknown_role(role: str, roles: set[str] | frozenset[str]) -> str:
    return f"unknown role '{role}' (roles: {', '.join(sorted(roles)) or 'none declared'})"
