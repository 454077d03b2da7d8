"""The instrument definitions this carehub serves, loaded once per process.

The library is `carehub/instruments/library/` plus the directories in the optional setting
`INSTRUMENT_EXTRA_DIRS`. The optional setting `INSTRUMENT_PATIENT_TEXTS` (a dict) overrides the
clinic-specific patient texts of `texts.PATIENT_TEXTS` (crisis resources, emergency help).
"""

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import Library, load_directories
from carehub.instruments.scoring import ScoreResult, score, score_total
from carehub.instruments.texts import default_patient_texts

LIBRARY_DIR = Path(__file__).resolve().parent / "library"


def library_dirs() -> list[Path]:
    extra = getattr(settings, "INSTRUMENT_EXTRA_DIRS", [])
    return [LIBRARY_DIR, *(Path(p) for p in extra)]


@cache
def library() -> Library:
    """Every published definition; `LibraryError` lists every problem if any file is invalid."""
    return load_directories(library_dirs())


@receiver(setting_changed)
def _library_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "INSTRUMENT_EXTRA_DIRS":
        library.cache_clear()


def instrument_get(key: str, version: int | None = None) -> InstrumentDefinition:
    """A definition by key; the latest version unless one is given (`UnknownInstrument`)."""
    return library().get(key, version)


def instruments(*, latest_only: bool = False) -> list[InstrumentDefinition]:
    """Every published definition by key and version, or only the latest of each key."""
    return library().latest() if latest_only else list(library())


def patient_texts() -> dict[str, str]:
    """The clinic's patient texts: the defaults, overridden by `INSTRUMENT_PATIENT_TEXTS`."""
    return {**default_patient_texts(), **patient_text_overrides("en")}


def patient_text_overrides(language: str) -> dict[str, str]:
    """`INSTRUMENT_PATIENT_TEXTS` in one language: a value is a text (every language) or a
    mapping of language codes to texts (`{"en": "...", "es": "..."}`)."""
    overrides: Mapping[str, Any] = getattr(settings, "INSTRUMENT_PATIENT_TEXTS", {}) or {}
    chosen: dict[str, str] = {}
    for name, value in overrides.items():
        if isinstance(value, Mapping):
            text = value.get(language) or value.get("en")
            if text:
                chosen[name] = str(text)
        else:
            chosen[name] = str(value)
    return chosen


def instrument_score(
    key: str,
    answers: Mapping[str, Any],
    *,
    version: int | None = None,
    baseline: float | None = None,
) -> ScoreResult:
    """`scoring.score` with the published definition and the clinic's patient texts."""
    return score(
        instrument_get(key, version), answers, baseline=baseline, patient_texts=patient_texts()
    )


def instrument_score_total(key: str, total: Any, *, version: int | None = None) -> ScoreResult:
    """`scoring.score_total` (a total without its item answers) with the published definition."""
    return score_total(instrument_get(key, version), total, patient_texts=patient_texts())
