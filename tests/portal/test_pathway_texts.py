"""Every state of the built-in pathway has reviewed plain-language texts for patients, in every
language the patient pages are shipped in."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.utils import translation

from carehub.pathways.registry import definition_get, registry
from carehub.portal.pathway_texts import pathway_texts, state_text, track_title

# Words patients should not meet on "What comes next".
JARGON = re.compile(
    r"\b(PEG|PHQ|GAD|PGIC|PSFS|MME|PDMP|CBT|SCS|RFA|ESI|MBB|MCID|intrathecal|ablation|"
    r"medial branch|threshold|guard|escalat\w*|proposal)\b",
    re.IGNORECASE,
)
# A step that needs a clinician's approval is never promised.
PROMISES = re.compile(r"\byou will (get|have|receive) (a|an|the) \w+", re.IGNORECASE)


def published() -> list[tuple[str, int]]:
    """Every definition this install publishes (the built-in ones, in the test settings)."""
    return sorted({(d.key, d.version) for d in registry()})


def test_the_built_in_pathway_is_covered() -> None:
    assert ("intractable-pain", 1) in published()


LANGUAGES = [code for code, _name in settings.LANGUAGES]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("key", "version"), published())
def test_every_state_of_every_track_has_a_text(key: str, version: int, language: str) -> None:
    definition = definition_get(key, version)
    texts = pathway_texts(key, version, language)
    assert texts is not None
    expected = {
        (track, state) for track, spec in definition.tracks.items() for state in spec.states
    }
    assert set(texts.states) >= expected, sorted(expected - set(texts.states))
    assert set(texts.states) <= expected, sorted(set(texts.states) - expected)  # no stale ones
    assert set(texts.track_titles) == set(definition.tracks)
    for (track, state), text in texts.states.items():
        for part in (text.title, text.now, text.next):
            assert part.strip(), (track, state)
            assert not JARGON.search(part), (track, state, JARGON.search(part))
            assert not PROMISES.search(part), (track, state, part)


def test_the_text_follows_the_active_language() -> None:
    with translation.override("es"):
        text = state_text(
            key="intractable-pain", version=1, track="ladder", state="intake", fallback_title="x"
        )
        title = track_title(key="intractable-pain", version=1, track="ladder", fallback="x")
    assert (text.title, title) == ("Primeros pasos", "Su plan de tratamiento")
    with translation.override("en"):
        text = state_text(
            key="intractable-pain", version=1, track="ladder", state="intake", fallback_title="x"
        )
    assert text.title == "Getting started"
