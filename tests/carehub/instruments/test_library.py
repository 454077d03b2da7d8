"""The shipped library: it loads, it carries the codes, licences and rules it should, and it
is what the catalogue reads."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from carehub.instruments.catalogue import PHQ9_ITEM9, SCORE_KEYS, entry
from carehub.instruments.definition import (
    InstrumentDefinition,
    loinc_check_digit_ok,
    placeholders,
)
from carehub.instruments.loader import Library, check_file
from carehub.instruments.texts import PATIENT_TEXTS

from .conftest import LIBRARY_DIR

Get = Callable[[str], InstrumentDefinition]

SHIPPED = {
    "block_diary@1",
    "bpi_interference@1",
    "bpi_severity@1",
    "gad7@1",
    "nrs@1",
    "odi@1",
    "peg@1",
    "pgic@1",
    "phq9@1",
    "procedure_safety@1",
    "psfs@1",
    "trial_diary@1",
}
LICENSED = {"odi", "bpi_severity", "bpi_interference"}


@pytest.mark.parametrize("path", sorted(LIBRARY_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_library_file_loads_without_a_problem(path: Path) -> None:
    definition, problems = check_file(path, require_name=True)
    assert [str(p) for p in problems] == []
    assert definition is not None


def test_the_library_ships_the_instruments(library: Library) -> None:
    assert {d.ref for d in library} == SHIPPED


def test_loinc_codes_of_panels_totals_and_items(get: Get) -> None:
    peg = get("peg")
    assert (peg.loinc.panel, peg.loinc.total) == ("91148-7", "91147-9")
    assert [i.loinc for i in peg.scored_items] == ["75893-8", "91145-3", "91146-1"]
    phq9 = get("phq9")
    assert (phq9.loinc.panel, phq9.loinc.total) == ("44249-1", "44261-6")
    item9 = phq9.item("item9")
    assert item9 is not None
    assert item9.loinc == "44260-8"
    gad7 = get("gad7")
    assert (gad7.loinc.panel, gad7.loinc.total) == ("69737-5", "70274-6")
    assert get("nrs").loinc.total == "72514-3"


def test_every_loinc_code_passes_its_check_digit(library: Library) -> None:
    codes = [c for d in library for c in (d.loinc.panel, d.loinc.total) if c]
    codes += [i.loinc for d in library for i in d.items if i.loinc]
    assert len(codes) >= 25
    assert all(loinc_check_digit_ok(code) for code in codes)


@pytest.mark.parametrize("typo", ["44249-2", "44294-1", "91147-8", "72541-3"])
def test_the_check_digit_catches_typos(typo: str) -> None:
    assert not loinc_check_digit_ok(typo)


@pytest.mark.parametrize("key", sorted(LICENSED))
def test_licensed_instruments_carry_no_wording(get: Get, key: str) -> None:
    d = get(key)
    assert d.licence == "licensed"
    assert d.items == ()
    assert d.instructions is None
    assert d.wording == ()
    assert d.administration == "staff"
    assert d.scoring.rule == "entered"


def test_only_the_licensed_instruments_are_licensed(library: Library) -> None:
    assert {d.key for d in library if d.licence == "licensed"} == LICENSED
    for d in library:
        if d.licence == "free":
            assert d.items
            assert d.wording
            assert d.wording_source


def test_min_interval_is_never_shorter_than_the_recall(library: Library) -> None:
    for d in library:
        assert d.min_interval >= (d.recall.period or timedelta(0)), d.ref
    assert get_interval(library, "phq9") == timedelta(days=14)
    assert get_interval(library, "gad7") == timedelta(days=14)
    assert get_interval(library, "peg") == timedelta(days=7)


def get_interval(library: Library, key: str) -> timedelta:
    return library.get(key).min_interval


def test_phq9_and_gad7_difficulty_items_are_not_scored(get: Get) -> None:
    for key, count in (("phq9", 9), ("gad7", 7)):
        d = get(key)
        difficulty = d.item("difficulty")
        assert difficulty is not None
        assert not difficulty.scored
        assert [i.key for i in d.scored_items] == [f"item{n}" for n in range(1, count + 1)]


def test_phq9_wording_is_the_published_nine_items(get: Get) -> None:
    phq9 = get("phq9")
    assert phq9.instructions == (
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    )
    texts = [i.text for i in phq9.scored_items]
    assert texts[0] == "Little interest or pleasure in doing things"
    assert (
        texts[8] == "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    labels = [o.label for o in phq9.scored_items[0].options]
    assert labels == ["Not at all", "Several days", "More than half the days", "Nearly every day"]
    assert phq9.wording_note


def test_red_flag_patient_messages_name_only_known_texts(library: Library) -> None:
    for d in library:
        for rule in d.red_flags:
            for name in placeholders(rule.patient_message or ""):
                assert name in PATIENT_TEXTS, (d.ref, rule.code)


def test_patient_texts_have_a_source() -> None:
    assert "988" in PATIENT_TEXTS["crisis_resources"].text
    assert "911" in PATIENT_TEXTS["crisis_resources"].text
    assert all(text.source for text in PATIENT_TEXTS.values())


def test_red_flags_and_their_urgencies(get: Get) -> None:
    def flags(key: str) -> dict[str, str]:
        return {rule.code: rule.urgency for rule in get(key).red_flags}

    assert flags("phq9")["phq9_item9_positive"] == "immediate"
    assert flags("phq9")["phq9_total_severe"] == "next_business_day"
    assert flags("gad7") == {"gad7_total_severe": "next_business_day"}
    safety = {
        "new_neurological_deficit": "immediate",
        "bladder_bowel_dysfunction": "immediate",
        "possible_infection": "same_day",
        "postural_headache": "same_day",
    }
    assert flags("trial_diary") == safety
    assert flags("procedure_safety") == safety


# --- the catalogue (carehub/instruments/catalogue.py) reads the library -------------------------


@pytest.mark.parametrize("code", SCORE_KEYS)
def test_the_observation_store_instruments_are_in_the_library_with_an_mcid(
    get: Get, code: str
) -> None:
    d = get(code)
    found = entry(code)
    assert found.definition == d
    assert (found.minimum, found.maximum) == (d.scoring.minimum, d.scoring.maximum)
    assert d.mcid is not None
    assert found.mcid_source == d.mcid.source
    if d.direction == "categorical":
        # PGIC: a responder by the answer alone.
        assert d.mcid.at_most is not None
    if d.scoring.rule in ("sum", "mean"):
        assert found.item_keys == tuple(i.key for i in d.scored_items)
    else:
        assert found.item_keys == ()


def test_the_phq9_item9_key_matches_the_observation_reference(get: Get) -> None:
    assert get("phq9").item(PHQ9_ITEM9) is not None
