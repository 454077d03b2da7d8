"""Worked examples, computed by hand from each instrument's published rule."""

from collections.abc import Callable

import pytest

from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.scoring import AnswerError, score

from .samples import nine_item_sum, odi_like

Get = Callable[[str], InstrumentDefinition]


def phq(values: list[int], **extra: int) -> dict[str, int]:
    return {f"item{n}": v for n, v in enumerate(values, start=1)} | extra


def problems_of(raised: pytest.ExceptionInfo[AnswerError]) -> dict[str, str]:
    return {p.item: p.message for p in raised.value.problems}


# --- PEG -------------------------------------------------------------------------------------


def test_peg_is_the_mean_of_its_three_items(get: Get) -> None:
    result = score(get("peg"), {"pain": 8, "enjoyment": 7, "activity": 6})
    assert result.total == 7.0  # (8 + 7 + 6) / 3
    assert result.band == "severe"
    assert result.missing == ()
    assert result.red_flags == ()


def test_peg_mean_is_rounded_half_up_to_two_decimals(get: Get) -> None:
    assert score(get("peg"), {"pain": 8, "enjoyment": 7, "activity": 7}).total == 7.33  # 22/3
    result = score(get("peg"), {"pain": 3, "enjoyment": 4, "activity": 4})
    assert result.total == 3.67  # 11/3 = 3.666...
    assert result.band == "mild"  # below 4


def test_peg_with_an_item_missing_has_no_score(get: Get) -> None:
    result = score(get("peg"), {"pain": 8, "enjoyment": 7, "activity": None})
    assert result.total is None
    assert result.band is None
    assert result.missing == ("activity",)
    assert result.note == "scored item(s) missing: activity (no score with any item missing)"


# --- NRS -------------------------------------------------------------------------------------


def test_nrs_is_the_number_given(get: Get) -> None:
    assert score(get("nrs"), {"pain": 7}).total == 7.0
    assert score(get("nrs"), {"pain": 7}).band == "severe"
    assert score(get("nrs"), {"pain": 0}).band == "no pain"
    assert score(get("nrs"), {"pain": 4.0}).answers == {"pain": 4}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (11, "11 is out of range (0 to 10)"),
        (-1, "-1 is out of range (0 to 10)"),
        (6.5, "must be a whole number, not 6.5"),
        ("7", "must be a number, not '7'"),
        (True, "must be a number, not True"),
        (float("nan"), "must be a finite number, not nan"),
    ],
)
def test_nrs_refuses_answers_out_of_range_or_of_the_wrong_type(
    get: Get, answer: object, message: str
) -> None:
    with pytest.raises(AnswerError) as raised:
        score(get("nrs"), {"pain": answer})
    assert problems_of(raised) == {"pain": message}


# --- PHQ-9 -----------------------------------------------------------------------------------


def test_phq9_is_the_sum_of_items_1_to_9_without_the_difficulty_item(get: Get) -> None:
    result = score(get("phq9"), phq([1, 2, 1, 2, 1, 1, 0, 0, 0], difficulty=3))
    assert result.total == 8.0  # 1+2+1+2+1+1+0+0+0; the difficulty answer (3) is not added
    assert result.band == "mild"
    assert result.answers["difficulty"] == 3
    assert result.red_flags == ()


def test_phq9_difficulty_item_may_be_left_blank(get: Get) -> None:
    result = score(get("phq9"), phq([0] * 9))
    assert result.total == 0.0
    assert result.missing == ()


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands(get: Get, total: int, band: str) -> None:
    values = [min(3, max(0, total - 3 * n)) for n in range(9)]
    assert sum(values) == total
    result = score(get("phq9"), phq(values))
    assert (result.total, result.band) == (total, band)


def test_phq9_item9_of_1_raises_the_immediate_flag_whatever_the_total(get: Get) -> None:
    result = score(get("phq9"), phq([0, 0, 0, 0, 0, 0, 0, 0, 1]))
    assert result.total == 1.0
    assert result.band == "minimal"
    assert result.urgency == "immediate"
    [flag] = result.red_flags
    assert (flag.code, flag.item, flag.value) == ("phq9_item9_positive", "item9", 1)
    assert flag.patient_message is not None
    assert "988" in flag.patient_message
    assert "911" in flag.patient_message
    assert "suicide-risk assessment" in flag.staff_message


def test_phq9_item9_of_0_raises_nothing(get: Get) -> None:
    assert score(get("phq9"), phq([2, 2, 2, 2, 2, 2, 2, 1, 0])).red_flags == ()


def test_phq9_total_of_20_raises_the_next_business_day_review(get: Get) -> None:
    result = score(get("phq9"), phq([3, 3, 3, 3, 3, 3, 2, 0, 0]))
    assert result.total == 20.0
    [flag] = result.red_flags
    assert (flag.code, flag.urgency, flag.value) == ("phq9_total_severe", "next_business_day", 20)
    assert score(get("phq9"), phq([3, 3, 3, 3, 3, 3, 1, 0, 0])).red_flags == ()  # 19


def test_phq9_flags_are_ordered_most_urgent_first(get: Get) -> None:
    result = score(get("phq9"), phq([3, 3, 3, 3, 3, 3, 3, 0, 2]))
    assert [f.code for f in result.red_flags] == ["phq9_item9_positive", "phq9_total_severe"]
    assert result.urgency == "immediate"


def test_phq9_with_an_item_missing_has_no_total_but_keeps_its_flags(get: Get) -> None:
    answers = phq([3, 3, 3, 3, 3, 3, 3, 0, 1])
    del answers["item8"]
    result = score(get("phq9"), answers)
    assert result.total is None
    assert result.missing == ("item8",)
    codes = {f.code: f for f in result.red_flags}
    assert set(codes) == {"phq9_item9_positive", "phq9_total_severe"}
    # 22 from the items answered: whatever item 8 is, the total is at least 20.
    assert codes["phq9_total_severe"].value == 22.0
    assert "could not be computed" in codes["phq9_total_severe"].staff_message


def test_phq9_item9_left_unanswered_is_followed_up(get: Get) -> None:
    answers = phq([1] * 8)
    result = score(get("phq9"), answers)
    assert result.total is None
    assert result.missing == ("item9",)
    [flag] = result.red_flags
    assert (flag.code, flag.urgency, flag.value) == (
        "phq9_item9_unanswered",
        "next_business_day",
        None,
    )


def test_phq9_invalid_answers_are_all_refused_with_the_item_named(get: Get) -> None:
    answers = phq([1, 4, "2", 1, 1, 1, 1, 1, 2], bogus=1)  # type: ignore[list-item]
    with pytest.raises(AnswerError) as raised:
        score(get("phq9"), answers)
    assert problems_of(raised) == {
        "bogus": (
            "unknown item (items: difficulty, item1, item2, item3, item4, item5, item6, item7, "
            "item8, item9)"
        ),
        "item2": "4 is not one of the answers (0, 1, 2, 3)",
        "item3": "must be a number (one of 0, 1, 2, 3), not '2'",
    }
    assert str(raised.value).startswith("3 invalid answer(s) to phq9@1: ")
    # The valid answers' flags travel with the refusal: item 9 = 2 must still be acted on.
    assert [f.code for f in raised.value.red_flags] == ["phq9_item9_positive"]


def test_an_invalid_item9_is_not_mistaken_for_an_unanswered_one(get: Get) -> None:
    with pytest.raises(AnswerError) as raised:
        score(get("phq9"), phq([0] * 8 + [5]))
    assert raised.value.red_flags == ()


def test_answers_must_be_a_mapping(get: Get) -> None:
    with pytest.raises(AnswerError, match="must be a mapping"):
        score(get("phq9"), [1, 2, 3])  # type: ignore[arg-type]


# --- GAD-7 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "total", "band"),
    [
        ([1, 1, 1, 1, 0, 0, 0], 4, "minimal"),
        ([1, 1, 1, 1, 1, 0, 0], 5, "mild"),
        ([2, 2, 2, 1, 1, 1, 0], 9, "mild"),
        ([2, 2, 2, 2, 1, 1, 0], 10, "moderate"),
        ([2, 2, 2, 2, 2, 2, 2], 14, "moderate"),
        ([3, 3, 3, 2, 2, 1, 1], 15, "severe"),
        ([3, 3, 3, 3, 3, 3, 3], 21, "severe"),
    ],
)
def test_gad7_sum_and_bands_at_5_10_15(get: Get, values: list[int], total: int, band: str) -> None:
    result = score(get("gad7"), phq(values, difficulty=2))
    assert (result.total, result.band) == (total, band)
    flags = [f.code for f in result.red_flags]
    assert flags == (["gad7_total_severe"] if total >= 15 else [])


# --- PGIC ------------------------------------------------------------------------------------


def test_pgic_is_the_answer_with_its_label(get: Get) -> None:
    result = score(get("pgic"), {"change": 2})
    assert (result.total, result.band) == (2.0, "much improved")
    assert score(get("pgic"), {"change": 7}).band == "very much worse"
    with pytest.raises(AnswerError) as raised:
        score(get("pgic"), {"change": 0})
    assert problems_of(raised) == {"change": "0 is not one of the answers (1, 2, 3, 4, 5, 6, 7)"}


# --- PSFS ------------------------------------------------------------------------------------


def test_psfs_is_the_mean_of_the_activities_rated(get: Get) -> None:
    three = {"activity1": 4, "activity2": 6, "activity3": 5, "activity1_name": "Walking the dog"}
    assert score(get("psfs"), three).total == 5.0  # (4 + 6 + 5) / 3
    four = {"activity1": 3, "activity2": 4, "activity3": 4, "activity4": 6}
    assert score(get("psfs"), four).total == 4.25  # 17 / 4
    five = {"activity1": 2, "activity2": 3, "activity3": 4, "activity4": 5, "activity5": 7}
    result = score(get("psfs"), five)
    assert result.total == 4.2  # 21 / 5
    assert result.missing == ()


def test_psfs_needs_three_activities(get: Get) -> None:
    result = score(get("psfs"), {"activity1": 4, "activity3": 5, "activity4": 6})
    assert result.total is None
    assert result.missing == ("activity2",)


def test_psfs_activity_names_are_text_of_limited_length(get: Get) -> None:
    with pytest.raises(AnswerError) as raised:
        score(get("psfs"), {"activity1": 4, "activity1_name": "x" * 121, "activity2_name": 3})
    assert problems_of(raised) == {
        "activity1_name": "is longer than 120 characters",
        "activity2_name": "must be text, not 3",
    }


# --- staff-entered scores (licensed) ---------------------------------------------------------


def test_odi_is_the_score_entered(get: Get) -> None:
    result = score(get("odi"), {"score": 22.2})
    assert (result.total, result.band) == (22.2, "moderate disability")
    assert score(get("odi"), {"score": 20}).band == "minimal disability"
    assert score(get("odi"), {"score": 20.5}).band == "moderate disability"
    assert score(get("odi"), {"score": 100}).band == "bed-bound or exaggerating symptoms"


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({"score": 100.5}, {"score": "100.5 is out of range (0 to 100)"}),
        ({"score": 22.25}, {"score": "22.25 has more than 1 decimal(s)"}),
        ({}, {"score": "the entered score is missing"}),
        (
            {"score": 30, "section1": 2},
            {"section1": "unknown item (items: score)"},
        ),
    ],
)
def test_odi_entries_are_checked(
    get: Get, answers: dict[str, object], problem: dict[str, str]
) -> None:
    with pytest.raises(AnswerError) as raised:
        score(get("odi"), answers)
    assert problems_of(raised) == problem


def test_bpi_scores_are_means_entered_by_staff(get: Get) -> None:
    assert score(get("bpi_severity"), {"score": 4.25}).total == 4.25
    assert score(get("bpi_severity"), {"score": 4.25}).band == "mild"
    assert score(get("bpi_severity"), {"score": 0}).band == "no pain"
    assert score(get("bpi_interference"), {"score": 6.43}).total == 6.43


# --- diagnostic block diary ------------------------------------------------------------------


def test_block_diary_relief_and_its_duration(get: Get) -> None:
    answers = {"pre": 8, "m30": 2, "h1": 1, "h2": 3, "h4": 5, "h6": 7, "h8": 8}
    result = score(get("block_diary"), answers)
    # Relief = (8 - post) / 8: 75, 87.5, 62.5, 37.5, 12.5, 0 %.
    assert result.total == 87.5
    assert result.derived == {
        "relief_threshold_pct": 50.0,
        "peak_relief_pct": 87.5,
        "peak_relief_at_hours": 1.0,
        "threshold_reached_hours": 0.5,
        "threshold_lasted_hours": 2.0,  # >= 50 % at 30 min, 1 h and 2 h; 37.5 % at 4 h
        "threshold_to_last_point": False,
        "relief_pct_m30": 75.0,
        "relief_pct_h1": 87.5,
        "relief_pct_h2": 62.5,
        "relief_pct_h4": 37.5,
        "relief_pct_h6": 12.5,
        "relief_pct_h8": 0.0,
    }


def test_block_diary_relief_starting_late(get: Get) -> None:
    answers = {"pre": 10, "m30": 6, "h1": 4, "h2": 5, "h4": 9, "h6": 10, "h8": 10}
    derived = score(get("block_diary"), answers).derived
    assert derived["peak_relief_pct"] == 60.0
    assert derived["threshold_reached_hours"] == 1.0  # 40 % at 30 min, 60 % at 1 h
    assert derived["threshold_lasted_hours"] == 2.0  # exactly 50 % at 2 h counts


def test_block_diary_an_unanswered_time_point_ends_the_relief(get: Get) -> None:
    answers = {"pre": 6, "m30": 3, "h2": 1, "h4": 1}
    result = score(get("block_diary"), answers)
    assert result.total == 83.3  # (6 - 1) / 6 = 83.33 %
    assert result.derived["threshold_lasted_hours"] == 0.5
    assert result.missing == ("h1", "h6", "h8")


def test_block_diary_relief_through_the_last_time_point(get: Get) -> None:
    answers = {"pre": 7, "m30": 1, "h1": 0, "h2": 0, "h4": 1, "h6": 2, "h8": 3}
    derived = score(get("block_diary"), answers).derived
    assert derived["threshold_lasted_hours"] == 8.0
    assert derived["threshold_to_last_point"] is True


def test_block_diary_worse_pain_is_no_relief(get: Get) -> None:
    result = score(get("block_diary"), {"pre": 4, "m30": 6, "h1": 5})
    assert result.total == 0.0
    assert result.derived["threshold_reached_hours"] is None
    assert result.derived["threshold_lasted_hours"] == 0.0


@pytest.mark.parametrize(
    ("answers", "note"),
    [
        ({"m30": 2, "h1": 1}, "the pre-block rating (pre) is missing"),
        ({"pre": 0, "m30": 0}, "no pain before the block: relief cannot be computed"),
        ({"pre": 6}, "no rating after the block"),
    ],
)
def test_block_diary_without_relief(get: Get, answers: dict[str, int], note: str) -> None:
    result = score(get("block_diary"), answers)
    assert result.total is None
    assert result.note == note


# --- trial diary -----------------------------------------------------------------------------

DAY = {
    "average_pain": 3,
    "worst_pain": 6,
    "walking_minutes": 40,
    "rescue_doses": 1,
    "leg_weakness_or_numbness": False,
    "bladder_or_bowel_problem": False,
    "fever_or_wound_problem": False,
    "headache_when_upright": False,
}


def test_trial_diary_relief_against_the_pre_trial_baseline(get: Get) -> None:
    result = score(get("trial_diary"), DAY, baseline=8)
    assert result.total == 3.0
    assert result.derived == {"relief_pct": 62.5, "change_from_baseline": -5.0}  # (8 - 3) / 8
    assert result.red_flags == ()
    assert result.missing == ()


def test_trial_diary_relief_edge_cases(get: Get) -> None:
    worse = score(get("trial_diary"), DAY | {"average_pain": 9}, baseline=6)
    assert worse.derived == {"relief_pct": 0.0, "change_from_baseline": 3.0}
    zero = score(get("trial_diary"), DAY | {"average_pain": 0}, baseline=0)
    assert zero.derived == {"relief_pct": None, "change_from_baseline": 0.0}
    unknown = score(get("trial_diary"), DAY)
    assert unknown.derived == {"relief_pct": None, "change_from_baseline": None}
    with pytest.raises(AnswerError, match=r"\(baseline\): 12 is out of range"):
        score(get("trial_diary"), DAY, baseline=12)


def test_only_diaries_take_a_baseline(get: Get) -> None:
    with pytest.raises(ValueError, match="peg@1 takes no baseline"):
        score(get("peg"), {"pain": 1, "enjoyment": 1, "activity": 1}, baseline=5)


def test_trial_diary_safety_answers_raise_flags_most_urgent_first(get: Get) -> None:
    answers = DAY | {"fever_or_wound_problem": True, "bladder_or_bowel_problem": True}
    result = score(get("trial_diary"), answers, baseline=8)
    assert [(f.code, f.urgency, f.item, f.value) for f in result.red_flags] == [
        ("bladder_bowel_dysfunction", "immediate", "bladder_or_bowel_problem", True),
        ("possible_infection", "same_day", "fever_or_wound_problem", True),
    ]
    assert result.total == 3.0
    emergency = result.red_flags[0].patient_message
    assert emergency is not None
    assert "911" in emergency


def test_trial_diary_yes_no_answers_must_be_yes_or_no(get: Get) -> None:
    with pytest.raises(AnswerError) as raised:
        score(get("trial_diary"), DAY | {"headache_when_upright": "yes", "walking_minutes": 30.5})
    assert problems_of(raised) == {
        "headache_when_upright": "must be yes or no (true/false), not 'yes'",
        "walking_minutes": "must be a whole number, not 30.5",
    }


def test_trial_diary_unanswered_items_are_listed(get: Get) -> None:
    result = score(get("trial_diary"), {"average_pain": 4, "headache_when_upright": True})
    assert result.total == 4.0
    assert "leg_weakness_or_numbness" in result.missing
    assert "medication_note" not in result.missing  # optional
    assert [f.code for f in result.red_flags] == ["postural_headache"]


def test_procedure_safety_has_no_total_only_flags(get: Get) -> None:
    answers = {
        "leg_weakness_or_numbness": True,
        "bladder_or_bowel_problem": False,
        "fever_or_wound_problem": False,
        "headache_when_upright": False,
        "other_concern": "  ",
    }
    result = score(get("procedure_safety"), answers)
    assert (result.total, result.band, result.note) == (None, None, None)
    assert [f.code for f in result.red_flags] == ["new_neurological_deficit"]
    assert "other_concern" not in result.answers  # blank text is unanswered


# --- clinic texts ----------------------------------------------------------------------------


def test_the_clinic_can_change_the_crisis_text(get: Get) -> None:
    result = score(
        get("phq9"),
        phq([0] * 8 + [1]),
        patient_texts={"crisis_resources": "Call Samaritans on 116 123."},
    )
    assert result.red_flags[0].patient_message == (
        "Thank you for telling us. Someone from your care team will contact you today. "
        "Call Samaritans on 116 123."
    )


# --- the generic rules -----------------------------------------------------------------------


def test_a_prorated_sum_scales_to_all_items_and_rounds_half_up() -> None:
    nine = nine_item_sum(max_missing=1)
    eight = {f"q{n}": 2 for n in range(1, 9)}  # q9 missing: 16 x 9 / 8 = 18
    result = score(nine, eight)
    assert (result.total, result.prorated, result.missing) == (18.0, True, ("q9",))
    half = {f"q{n}": 0 for n in range(1, 9)} | {"q1": 3, "q2": 1}  # 4 x 9 / 8 = 4.5 -> 5
    assert score(nine, half).total == 5.0
    assert score(nine, {f"q{n}": 1 for n in range(1, 8)}).total is None  # two missing


def test_a_percent_score_counts_only_the_sections_answered() -> None:
    odi = odi_like()
    ten = {f"s{n}": 2 for n in range(1, 11)}
    assert score(odi, ten).total == 40.0  # 20 / 50
    nine = {f"s{n}": 2 for n in range(1, 10)}
    result = score(odi, nine)
    assert result.total == 40.0  # 18 / 45
    assert result.prorated
    odd = nine | {"s1": 3}
    assert score(odi, odd).total == 42.2  # 19 / 45 = 42.22 %
    assert score(odi, {f"s{n}": 2 for n in range(1, 9)}).total is None  # two missing
