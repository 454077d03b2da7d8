"""Pathway diagrams as Mermaid `stateDiagram-v2` text: one composite state per track, the tracks
separated as concurrent regions, approval-gated transitions marked, invasive and current states
styled."""

from __future__ import annotations

from collections.abc import Mapping

from workflows.definition import PathwayDefinition


def _id(track: str, state: str) -> str:
    return f"{track}__{state}"


def _label(text: str) -> str:
    return text.replace('"', "'").replace(":", " -").replace(";", ",")


def mermaid(definition: PathwayDefinition, active: Mapping[str, str] | None = None) -> str:
    """The definition as Mermaid text; `active` (track → state) highlights current states."""
    active = active or {}
    lines = ["stateDiagram-v2", f"    %% {definition.ref}: {_label(definition.title)}"]
    lines.append(f'    state "{_label(definition.title)}" as pathway {{')
    for position, (track_name, track) in enumerate(definition.tracks.items()):
        if position:
            lines.append("        --")
        lines.append(f'        state "{_label(track.title or track_name)}" as {track_name} {{')
        for state_name, state in track.states.items():
            title = _label(state.title or state_name)
            lines.append(f'            state "{title}" as {_id(track_name, state_name)}')
        lines.append(f"            [*] --> {_id(track_name, track.initial)}")
        for transition in track.transitions:
            sources = (
                [s for s in track.states if not track.states[s].final]
                if "*" in transition.source
                else transition.source
            )
            label = transition.event + (" (internal)" if transition.internal else "")
            if transition.approval is not None:
                label += " [approval: " + ", ".join(transition.approval.roles) + "]"
            for source in sources:
                lines.append(
                    f"            {_id(track_name, source)} --> "
                    f"{_id(track_name, transition.target_from(source))}: {_label(label)}"
                )
        for timer in track.timers:
            lines.append(
                f"            note right of {_id(track_name, timer.state)}: after "
                f"{timer.describe_after()} → {timer.event}"
            )
        for state_name, state in track.states.items():
            if state.final:
                lines.append(f"            {_id(track_name, state_name)} --> [*]")
        lines.append("        }")
    lines.append("    }")
    lines.append("    classDef invasive stroke:#b3261e,stroke-width:2px")
    lines.append("    classDef current fill:#ffe082,stroke:#6d4c00,stroke-width:3px")
    for track_name, track in definition.tracks.items():
        for state_name, state in track.states.items():
            if state.invasive:
                lines.append(f"    class {_id(track_name, state_name)} invasive")
    for track_name, state_name in active.items():
        lines.append(f"    class {_id(track_name, state_name)} current")
    return "\n".join(lines) + "\n"
