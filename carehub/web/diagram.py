"""The pathway diagram as server-rendered SVG, one drawing per track, current state highlighted.

The pathway's Mermaid text (`workflows.diagram.mermaid`) needs mermaid.js in the browser, which
writes inline `<style>` elements and `style` attributes into its SVG: the Content Security
Policy (`style-src 'self'`, ADR 0007) blocks those, and the library is several megabytes.
Instead this module lays each track out in columns by distance from the initial state and the
template draws boxes and arrows styled by the site's stylesheet; the Mermaid text stays
available on the page for any Mermaid viewer. Every drawing has a text equivalent: the current
state and the transitions leaving it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from workflows import PathwayDefinition
from workflows.definition import TrackSpec, format_duration

BOX_W = 168
BOX_H = 40
GAP_X = 44
GAP_Y = 14
PAD = 12
LABEL_CHARS = 24


@dataclass(frozen=True)
class Box:
    state: str
    title: str
    label: str
    x: int
    y: int
    current: bool
    invasive: bool
    final: bool
    stage: str


@dataclass(frozen=True)
class Edge:
    path: str
    gated: bool
    title: str


@dataclass(frozen=True)
class Exit:
    event: str
    target: str
    approval_roles: tuple[str, ...]
    guard: str


@dataclass
class TrackDiagram:
    track: str
    title: str
    current: str
    current_title: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    any_state_events: list[str] = field(default_factory=list)
    timers: list[str] = field(default_factory=list)


def _title(track: TrackSpec, state: str) -> str:
    spec = track.states[state]
    return spec.title or state.replace("_", " ").capitalize()


def _layers(track: TrackSpec) -> dict[str, int]:
    """Each state's column: its distance from the initial state (unreached states last)."""
    depth = {track.initial: 0}
    queue = deque([track.initial])
    while queue:
        state = queue.popleft()
        for transition in track.transitions:
            if "*" in transition.source or state not in transition.source:
                continue
            target = transition.target_from(state)
            if target not in depth:
                depth[target] = depth[state] + 1
                queue.append(target)
    last = max(depth.values(), default=0) + 1
    for state in track.states:
        depth.setdefault(state, last)
    return depth


def track_diagram(definition: PathwayDefinition, track_name: str, current: str) -> TrackDiagram:
    track = definition.tracks[track_name]
    layers = _layers(track)
    columns: dict[int, list[str]] = {}
    for state in track.states:  # declaration order within a column
        columns.setdefault(layers[state], []).append(state)
    positions: dict[str, tuple[int, int]] = {}
    for column, states in sorted(columns.items()):
        for row, state in enumerate(states):
            positions[state] = (PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + (max(columns) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(len(s) for s in columns.values()) * (BOX_H + GAP_Y) - GAP_Y
    diagram = TrackDiagram(
        track=track_name,
        title=track.title or track_name,
        current=current,
        current_title=_title(track, current) if current in track.states else current,
        width=width,
        height=height,
    )
    for state, (x, y) in positions.items():
        spec = track.states[state]
        title = _title(track, state)
        label = title if len(title) <= LABEL_CHARS else title[: LABEL_CHARS - 1] + "…"
        diagram.boxes.append(
            Box(
                state=state,
                title=title,
                label=label,
                x=x,
                y=y,
                current=state == current,
                invasive=spec.invasive,
                final=spec.final,
                stage=spec.stage or "",
            )
        )
    seen: set[tuple[str, str, bool]] = set()
    for transition in track.transitions:
        gated = transition.approval is not None
        if "*" in transition.source:
            if transition.event not in diagram.any_state_events:
                diagram.any_state_events.append(transition.event)
            continue
        for source in transition.source:
            target = transition.target_from(source)
            if (source, target, gated) in seen or source == target:
                continue
            seen.add((source, target, gated))
            diagram.edges.append(
                Edge(
                    path=_path(positions[source], positions[target]),
                    gated=gated,
                    title=f"{_title(track, source)} → {_title(track, target)} on "
                    f"{transition.event}" + (" (needs approval)" if gated else ""),
                )
            )
    if current in track.states and not track.states[current].final:
        for transition in track.transitions:
            if transition.leaves(current) and not transition.internal:
                target = transition.target_from(current)
                diagram.exits.append(
                    Exit(
                        event=transition.event,
                        target=_title(track, target) if target in track.states else target,
                        approval_roles=tuple(transition.approval.roles)
                        if transition.approval
                        else (),
                        guard=transition.guard or "",
                    )
                )
    diagram.timers = [
        f"{_title(track, t.state)}: after {format_duration(t.after)} → {t.event}"
        for t in track.timers
    ]
    return diagram


def _path(source: tuple[int, int], target: tuple[int, int]) -> str:
    sx, sy = source
    tx, ty = target
    if tx > sx:  # forwards: right edge to left edge
        x1, y1 = sx + BOX_W, sy + BOX_H / 2
        x2, y2 = tx, ty + BOX_H / 2
        bend = (x2 - x1) / 2
        controls = f"{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f}"
        return f"M{x1:.0f},{y1:.0f} C{controls} {x2:.0f},{y2:.0f}"
    # same column or backwards: leave from the bottom, loop round, enter from the bottom
    x1, y1 = sx + BOX_W / 2, sy + BOX_H
    x2, y2 = tx + BOX_W / 2, ty + BOX_H
    dip = max(y1, y2) + GAP_Y
    return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{dip:.0f} {x2:.0f},{dip:.0f} {x2:.0f},{y2:.0f}"


def pathway_diagrams(definition: PathwayDefinition, states: dict[str, str]) -> list[TrackDiagram]:
    """One diagram per track of the definition, with `states` (track → state) highlighted."""
    return [track_diagram(definition, name, states.get(name, "")) for name in definition.tracks]
