from workflows import PathwayDefinition, mermaid


def test_mermaid_has_every_track_state_and_transition(stepped_care: PathwayDefinition) -> None:
    text = mermaid(stepped_care)
    assert text.startswith("stateDiagram-v2\n")
    for track_name, track in stepped_care.tracks.items():
        assert f"as {track_name} {{" in text
        for state in track.states:
            assert f"as {track_name}__{state}" in text
    # Tracks are concurrent regions.
    assert text.count("\n        --\n") == len(stepped_care.tracks) - 1
    assert "ladder__conventional --> ladder__block: review_due [approval - physician]" in text
    assert "note right of ladder__conventional: after 12w → review_due" in text
    assert "class ladder__block invasive" in text
    # "*" expands to every non-final state.
    assert text.count("--> ladder__discharged: discharge") == 6


def test_mermaid_highlights_current_states(stepped_care: PathwayDefinition) -> None:
    text = mermaid(stepped_care, {"ladder": "block", "pt": "active"})
    assert "class ladder__block current" in text
    assert "class pt__active current" in text
