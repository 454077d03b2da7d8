"""The responder rule from a baseline and a latest score, and trends over the latest scores."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from carehub.instruments.catalogue import (
    Entry,
    Names,
    gain,
    improvement_pct,
    responder,
    responder_threshold,
)
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.scoring import trend

Get = Callable[[str], InstrumentDefinition]

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def weekly(*values: float) -> list[tuple[datetime, float]]:
    return [(START + timedelta(weeks=n), value) for n, value in enumerate(values)]


# --- the responder rule (carehub.instruments.catalogue) -------------------------------------


def facts(d: InstrumentDefinition, baseline: float | None, latest: float | None) -> dict:
    """The catalogue's improvement (rounded like the facts) and responder."""
    found = Entry(d, Names())
    pct = (
        improvement_pct(found, baseline, latest)
        if baseline is not None and latest is not None
        else None
    )
    return {
        "improvement_pct": round(pct, 2) + 0.0 if pct is not None else None,
        "responder": responder(found, baseline, latest),
    }


def test_lower_is_better_improvement_is_positive(get: Get) -> None:
    assert facts(get("peg"), 6, 4) == {
        "improvement_pct": 33.33,  # (6 - 4) / 6
        "responder": True,  # >= 30 %
    }
    assert facts(get("peg"), 6, 5) == {"improvement_pct": 16.67, "responder": False}
    assert gain(Entry(get("peg"), Names()), 6, 4) == 2


def test_getting_worse_is_a_negative_improvement(get: Get) -> None:
    assert facts(get("peg"), 4, 6) == {"improvement_pct": -50.0, "responder": False}


def test_higher_is_better_improvement_is_positive(get: Get) -> None:
    assert facts(get("psfs"), 3, 5.5) == {
        "improvement_pct": 83.33,  # (5.5 - 3) / 3
        "responder": True,  # >= 2 points
    }
    assert facts(get("psfs"), 3, 4)["responder"] is False
    assert facts(get("psfs"), 5, 3)["improvement_pct"] == -40.0


def test_a_baseline_of_zero_has_no_percentage(get: Get) -> None:
    assert facts(get("peg"), 0, 2) == {"improvement_pct": None, "responder": None}  # percent only
    assert facts(get("psfs"), 0, 3) == {"improvement_pct": None, "responder": True}  # points


def test_a_missing_score_gives_no_facts(get: Get) -> None:
    empty = {"improvement_pct": None, "responder": None}
    assert facts(get("peg"), None, 4) == empty
    assert facts(get("peg"), 6, None) == empty


def test_mcid_in_points_or_percent_either_suffices(get: Get) -> None:
    nrs = get("nrs")  # 2 points or 30 %
    assert facts(nrs, 3, 2)["responder"] is True  # 1 point, 33 %
    assert facts(nrs, 9, 7)["responder"] is True  # 2 points, 22 %
    assert facts(nrs, 9, 8)["responder"] is False  # 1 point, 11 %
    phq9 = get("phq9")  # 5 points only
    assert facts(phq9, 12, 8)["responder"] is False  # 4 points although 33 %
    assert facts(phq9, 12, 7)["responder"] is True
    gad7 = get("gad7")  # 4 points
    assert facts(gad7, 10, 6)["responder"] is True


def test_pgic_responder_is_much_or_very_much_improved(get: Get) -> None:
    pgic = get("pgic")
    assert facts(pgic, None, 2) == {"improvement_pct": None, "responder": True}
    assert facts(pgic, 4, 1) == {"improvement_pct": None, "responder": True}
    assert facts(pgic, 1, 3)["responder"] is False
    assert facts(pgic, 1, None)["responder"] is None


def test_instruments_without_an_mcid_have_no_responder(get: Get) -> None:
    assert facts(get("block_diary"), 50, 80) == {"improvement_pct": 60.0, "responder": None}


def test_the_responder_threshold_is_the_mcid_on_the_better_side(get: Get) -> None:
    assert responder_threshold(Entry(get("nrs"), Names()), 6) == 4  # points first
    assert responder_threshold(Entry(get("peg"), Names()), 6) == pytest.approx(4.2)  # 30 %
    assert responder_threshold(Entry(get("psfs"), Names()), 3) == 5  # higher is better
    assert responder_threshold(Entry(get("pgic"), Names()), 4) is None  # by the answer
    assert responder_threshold(Entry(get("block_diary"), Names()), 50) is None  # no MCID


# --- trend -----------------------------------------------------------------------------------


def test_a_peg_falling_by_more_than_its_mcid_is_improving(get: Get) -> None:
    # Slope -0.5 a week over 4 weeks: -2 points, against 30 % of the fitted start (6) = 1.8.
    assert trend(get("peg"), weekly(6, 5.5, 5, 4.5, 4)) == "improving"


def test_a_small_fall_is_stable(get: Get) -> None:
    # -0.4 a week over 4 weeks = -1.6 points < 1.8.
    assert trend(get("peg"), weekly(6, 5.6, 5.2, 4.8, 4.4)) == "stable"
    assert trend(get("peg"), weekly(6, 6.2, 5.8, 6, 6.1)) == "stable"


def test_rising_pain_is_worsening(get: Get) -> None:
    assert trend(get("nrs"), weekly(3, 4, 5, 6)) == "worsening"  # +3 points >= 2


def test_higher_is_better_rising_is_improving(get: Get) -> None:
    assert trend(get("psfs"), weekly(3, 4, 5, 6)) == "improving"
    assert trend(get("psfs"), weekly(6, 5, 4, 3)) == "worsening"


def test_only_the_last_six_scores_count(get: Get) -> None:
    # A big early fall, then six flat weeks.
    scores = weekly(9, 8, 5, 5, 5, 5, 5, 5)
    assert trend(get("peg"), scores) == "stable"
    assert trend(get("peg"), scores, window=8) == "improving"


def test_scores_are_taken_in_time_order(get: Get) -> None:
    scores = weekly(6, 5.5, 5, 4.5, 4)
    assert trend(get("peg"), list(reversed(scores))) == "improving"


def test_no_trend_from_too_few_scores_or_a_single_instant(get: Get) -> None:
    assert trend(get("peg"), weekly(6, 4, 2)) is None
    same = [(START, 6.0), (START, 4.0), (START, 3.0), (START, 2.0)]
    assert trend(get("peg"), same) is None


def test_no_trend_for_categorical_or_mcid_free_instruments(get: Get) -> None:
    assert trend(get("pgic"), weekly(4, 3, 2, 1)) is None
    assert trend(get("block_diary"), weekly(10, 20, 30, 40)) is None


def test_no_percentage_trend_from_a_zero_start(get: Get) -> None:
    assert trend(get("peg"), weekly(0, 0, 0, 0)) is None


def test_trend_needs_aware_datetimes(get: Get) -> None:
    naive = [(datetime(2026, 1, n), 5.0) for n in range(1, 5)]
    with pytest.raises(ValueError, match="time-zone aware"):
        trend(get("peg"), naive)
