"""Plain-language texts for patients, per state of a pathway: what is happening now and what
usually comes next ("What comes next" in the portal).

One YAML file per published definition in `pathway_texts/`, named like the definition
(`KEY.vVERSION.yaml`), and one per other language the patient pages are shipped in
(`KEY.vVERSION.LANG.yaml`, e.g. `intractable-pain.v1.es.yaml`): the text in the active language
(`django.utils.translation`), else the English one. A state without a reviewed text falls back to
the definition's own title (never its description, which is written for clinicians): the page
stays truthful, and the tests over the built-in definition fail until every text is written in
every language.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from django.utils.translation import get_language
from django.utils.translation import gettext as _

TEXTS_DIR = Path(__file__).resolve().parent / "pathway_texts"


@dataclass(frozen=True)
class StateText:
    title: str
    now: str
    next: str
    reviewed: bool = True


@dataclass(frozen=True)
class PathwayTexts:
    key: str
    version: int
    track_titles: dict[str, str]
    states: dict[tuple[str, str], StateText]


def _language() -> str:
    return (get_language() or "en").split("-")[0]


@cache
def pathway_texts(key: str, version: int, language: str = "en") -> PathwayTexts | None:
    """The texts of a definition in one language (None: no file for it)."""
    suffix = "" if language == "en" else f".{language}"
    path = TEXTS_DIR / f"{key}.v{version}{suffix}.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    titles: dict[str, str] = {}
    states: dict[tuple[str, str], StateText] = {}
    for track, spec in (data.get("tracks") or {}).items():
        titles[track] = str(spec.get("title") or track)
        for state, text in (spec.get("states") or {}).items():
            states[(track, state)] = StateText(
                title=str(text["title"]).strip(),
                now=" ".join(str(text["now"]).split()),
                next=" ".join(str(text["next"]).split()),
            )
    return PathwayTexts(key=key, version=version, track_titles=titles, states=states)


def state_text(*, key: str, version: int, track: str, state: str, fallback_title: str) -> StateText:
    for language in dict.fromkeys([_language(), "en"]):
        texts = pathway_texts(key, version, language)
        found = texts.states.get((track, state)) if texts else None
        if found is not None:
            return found
    return StateText(
        title=fallback_title,
        now=_("Your care team will explain this step with you."),
        next=_("Ask your care team what comes next."),
        reviewed=False,
    )


def track_title(*, key: str, version: int, track: str, fallback: str) -> str:
    for language in dict.fromkeys([_language(), "en"]):
        texts = pathway_texts(key, version, language)
        if texts and track in texts.track_titles:
            return texts.track_titles[track]
    return fallback
