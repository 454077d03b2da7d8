"""The pathway diagram as server-rendered SVG, one drawing per track, current state highlighted.

Graphviz's `dot` lays each track out (ranks top to bottom, few crossings, splines routed round
the boxes): the `graphviz-pure` wheel ships it as one program, with no system package. It is
asked for the layout only (`-Tplain`: every box's centre and size, every edge's spline), and
the template draws boxes and arrows with the site's stylesheet: Graphviz's own SVG, like
mermaid.js, would carry its own colours and fonts, and the Content Security Policy
(`style-src 'self'`, ADR 0007) keeps styling in the stylesheet. A layout depends only on the
definition version and the track, so it is computed once per process (`_layout` is cached);
the current state is marked when the page is drawn. Titles are wrapped, never cut, and the
drawing scales to the width of the page (top to bottom, no sideways scrolling). Every drawing
has a text equivalent: the current state and the ways out of it, in words
(`carehub.web.presentation`), with the rule of each one click away. ADR 0018.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from carehub.web.presentation import event_title, state_title, track_title
from workflows import PathwayDefinition
from workflows.definition import TrackSpec

logger = logging.getLogger(__name__)

POINTS_PER_INCH = 72
PAD = 8
WRAP = 22  # characters a line of a box's title
FONT_SIZE = 12
LINE_HEIGHT = 15
DOT_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Box:
    state: str
    title: str
    lines: tuple[str, ...]
    x: float  # top-left corner
    y: float
    width: float
    height: float
    current: bool
    invasive: bool
    final: bool
    stage: str

    @property
    def text_x(self) -> float:
        return round(self.x + self.width / 2, 1)

    @property
    def text_lines(self) -> list[tuple[float, str]]:
        """(baseline y, text) of each line, centred in the box."""
        first = self.y + self.height / 2 - (len(self.lines) - 1) * LINE_HEIGHT / 2 + 4
        return [(round(first + i * LINE_HEIGHT, 1), line) for i, line in enumerate(self.lines)]


@dataclass(frozen=True)
class Edge:
    path: str
    gated: bool
    title: str


@dataclass(frozen=True)
class Exit:
    event: str  # the event's title
    target: str  # the state's title
    approval_roles: tuple[str, ...]
    guard: str  # the raw rule, shown one click away


@dataclass
class TrackDiagram:
    track: str
    title: str
    current: str
    current_title: str
    width: float
    height: float
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    any_state_events: list[str] = field(default_factory=list)
    timers: list[str] = field(default_factory=list)

    @property
    def drawn(self) -> bool:
        return bool(self.boxes)


@dataclass(frozen=True)
class _Placed:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class _Layout:
    width: float
    height: float
    nodes: dict[str, _Placed]
    edges: tuple[tuple[str, str, bool, str], ...]  # source, target, gated, svg path


def dot_program() -> str | None:
    """The `graphviz-pure` program installed with this Python (or on the PATH)."""
    beside = Path(sys.executable).with_name("graphviz-pure")
    if beside.exists():
        return str(beside)
    return shutil.which("graphviz-pure")


def _lines(title: str) -> tuple[str, ...]:
    return tuple(textwrap.wrap(title, WRAP, break_long_words=False)) or (title,)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edges(track: TrackSpec) -> list[tuple[str, str, bool, str]]:
    """(source, target, gated, event) for each drawn arrow: one per pair (and gate kind);
    `from: "*"` transitions are listed in words instead of drawn from every state."""
    seen: set[tuple[str, str, bool]] = set()
    edges = []
    for transition in track.transitions:
        if "*" in transition.source or transition.target is None:
            continue
        gated = transition.approval is not None
        for source in transition.source:
            target = transition.target_from(source)
            if source == target or (source, target, gated) in seen:
                continue
            seen.add((source, target, gated))
            edges.append((source, target, gated, transition.event))
    return edges


def dot_source(definition: PathwayDefinition, track_name: str) -> str:
    """The track as a Graphviz graph: boxes sized for their wrapped titles, top to bottom."""
    track = definition.tracks[track_name]
    out = [
        "digraph track {",
        "  graph [rankdir=TB, nodesep=0.25, ranksep=0.35, splines=spline];",
        f'  node [shape=box, fontname="Arimo", fontsize={FONT_SIZE}, margin="0.12,0.06"];',
    ]
    for name in track.states:
        label = "\\n".join(_lines(state_title(definition, track_name, name)))
        out.append(f'  {name} [label="{label}"];')
    for source, target, _, _ in _edges(track):
        out.append(f"  {source} -> {target};")
    out.append("}")
    return "\n".join(out) + "\n"


def _parse_plain(text: str, edges: list[tuple[str, str, bool, str]]) -> _Layout:
    """Graphviz's `plain` output (inches, origin bottom left) → points, origin top left."""
    width = height = 0.0
    nodes: dict[str, _Placed] = {}
    splines: dict[tuple[str, str], list[list[tuple[float, float]]]] = {}
    for line in text.splitlines():
        parts = shlex.split(line)
        if not parts:
            continue
        if parts[0] == "graph":
            width, height = float(parts[2]) * POINTS_PER_INCH, float(parts[3]) * POINTS_PER_INCH
        elif parts[0] == "node":
            cx, cy, w, h = (float(v) * POINTS_PER_INCH for v in parts[2:6])
            nodes[parts[1]] = _Placed(
                round(cx - w / 2 + PAD, 1),
                round(height - cy - h / 2 + PAD, 1),
                round(w, 1),
                round(h, 1),
            )
        elif parts[0] == "edge":
            count = int(parts[3])
            values = [float(v) * POINTS_PER_INCH for v in parts[4 : 4 + 2 * count]]
            points = [
                (round(values[i] + PAD, 1), round(height - values[i + 1] + PAD, 1))
                for i in range(0, len(values), 2)
            ]
            splines.setdefault((parts[1], parts[2]), []).append(points)
    placed = []
    for source, target, gated, _ in edges:
        options = splines.get((source, target)) or []
        if not options:
            continue
        points = options.pop(0)
        path = f"M{points[0][0]},{points[0][1]}"
        for i in range(1, len(points) - 2, 3):
            a, b, c = points[i], points[i + 1], points[i + 2]
            path += f" C{a[0]},{a[1]} {b[0]},{b[1]} {c[0]},{c[1]}"
        placed.append((source, target, gated, path))
    return _Layout(round(width + 2 * PAD, 1), round(height + 2 * PAD, 1), nodes, tuple(placed))


_LAYOUTS: dict[tuple[str, str], _Layout | None] = {}


def _layout(definition: PathwayDefinition, track_name: str) -> _Layout | None:
    """The track's layout, computed once per process and definition version (a published
    version never changes)."""
    key = (definition.ref, track_name)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = _compute_layout(definition, track_name)
    return _LAYOUTS[key]


def _compute_layout(definition: PathwayDefinition, track_name: str) -> _Layout | None:
    """The track's layout, or None when Graphviz is not there or fails (the page then shows
    the text equivalent only, and the failure is logged)."""
    program = dot_program()
    if program is None:
        logger.error("graphviz-pure is not installed: pathway diagrams are shown as text only")
        return None
    try:
        done = subprocess.run(
            [program, "-Tplain"],
            input=dot_source(definition, track_name),
            capture_output=True,
            text=True,
            timeout=DOT_TIMEOUT_SECONDS,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.error("graphviz-pure failed on %s/%s: %s", definition.ref, track_name, exc)
        return None
    return _parse_plain(done.stdout, _edges(definition.tracks[track_name]))


def track_diagram(definition: PathwayDefinition, track_name: str, current: str) -> TrackDiagram:
    track = definition.tracks[track_name]
    layout = _layout(definition, track_name)
    diagram = TrackDiagram(
        track=track_name,
        title=track_title(definition, track_name),
        current=current,
        current_title=state_title(definition, track_name, current) if current else "",
        width=layout.width if layout else 0,
        height=layout.height if layout else 0,
    )
    if layout is not None:
        for state, spec in track.states.items():
            place = layout.nodes.get(state)
            if place is None:
                continue
            title = state_title(definition, track_name, state)
            diagram.boxes.append(
                Box(
                    state=state,
                    title=title,
                    lines=_lines(title),
                    x=place.x,
                    y=place.y,
                    width=place.width,
                    height=place.height,
                    current=state == current,
                    invasive=spec.invasive,
                    final=spec.final,
                    stage=spec.stage or "",
                )
            )
        events = {(s, t, g): e for s, t, g, e in _edges(track)}
        for source, target, gated, path in layout.edges:
            diagram.edges.append(
                Edge(
                    path=path,
                    gated=gated,
                    title=f"{state_title(definition, track_name, source)} → "
                    f"{state_title(definition, track_name, target)}: "
                    f"{event_title(definition, events[(source, target, gated)])}"
                    + (" (needs approval)" if gated else ""),
                )
            )
    for transition in track.transitions:
        if "*" in transition.source:
            title = event_title(definition, transition.event)
            if title not in diagram.any_state_events:
                diagram.any_state_events.append(title)
    if current in track.states and not track.states[current].final:
        for transition in track.transitions:
            if transition.leaves(current) and not transition.internal:
                target = transition.target_from(current)
                diagram.exits.append(
                    Exit(
                        event=event_title(definition, transition.event),
                        target=state_title(definition, track_name, target),
                        approval_roles=tuple(transition.approval.roles)
                        if transition.approval
                        else (),
                        guard=transition.guard or "",
                    )
                )
    diagram.timers = [
        f"{state_title(definition, track_name, t.state)}: after {t.describe_after()}, "
        f"{event_title(definition, t.event)}"
        for t in track.timers
    ]
    return diagram


def pathway_diagrams(definition: PathwayDefinition, states: dict[str, str]) -> list[TrackDiagram]:
    """One diagram per track of the definition, with `states` (track → state) highlighted."""
    return [track_diagram(definition, name, states.get(name, "")) for name in definition.tracks]
