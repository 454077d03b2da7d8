"""carehub's rules for the pathway simulator (`workflows.simulate`), from the code the clinic runs.

`clinic_rules()` hands the simulator the same functions the real scheduler and services use:
the check-in calendar (`carehub.checkins.schedule`: time zones, send windows, DST, the answer
window and the reminders), the delivery policy (`carehub.messaging.policy`: quiet hours, the
daily budget, suppression), the instrument library's scoring and red-flag rules, and the fact
derivation of `carehub.observations.selectors` (fed the simulated observations instead of
rows). Settings are read once, when the rules are made. It composes check-ins, messaging and
pathways, so it lives above them (ADR 0032, Amendment 2); `manage.py pathway simulate` is
registered by `carehub.simulation.apps`.
"""

from __future__ import annotations

import json
import random
from argparse import ArgumentParser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from carehub.checkins.instruments import min_interval
from carehub.checkins.schedule import (
    SendWindow,
    answer_window,
    checkin_reminders,
    next_due,
    series_cadence,
)
from carehub.instruments.registry import instrument_get, instrument_score
from carehub.instruments.scoring import AnswerError
from carehub.messaging.models import DeliveryChannel, MessageStatus
from carehub.messaging.policy import SEND, PatientContact, decide_for_patient
from carehub.observations.selectors import facts_and_occurrences_from_rows
from carehub.simulation.html import render
from workflows.definition import PathwayDefinition
from workflows.errors import describe_problems
from workflows.facts import FactValue
from workflows.model import ThresholdValue
from workflows.simulate.cohort import Cohort, CohortError, load_cohort, validate_against
from workflows.simulate.report import build_report, compare
from workflows.simulate.rules import Contact, Delivery, Scored, SimObservation
from workflows.simulate.runner import Simulation


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=256)
def _window(contact: Contact) -> SendWindow:
    return SendWindow(contact.window_start, contact.window_end)


@dataclass
class CarehubRules:
    """`workflows.simulate.rules.ClinicRules` on carehub's own code and settings."""

    misses_before_task: int
    daily_budget: int
    answer_window_cap: timedelta
    send_at: Any

    def facts(
        self, rows: list[SimObservation], time_zone: str, now: datetime
    ) -> tuple[dict[str, FactValue], dict[str, tuple[datetime, ...]]]:
        return facts_and_occurrences_from_rows(rows, time_zone=time_zone, now=now)  # type: ignore[arg-type]

    def series_interval(self, instrument: str, every: timedelta) -> timedelta:
        minimum = min_interval(instrument)
        return max(every, minimum) if minimum is not None else every

    def next_due(
        self,
        contact: Contact,
        *,
        started_at: datetime,
        every: timedelta,
        after: datetime,
        last_due: datetime | None,
    ) -> datetime:
        cadence = series_cadence(
            started_at=started_at,
            every=every,
            zone=_zone(contact.time_zone),
            window=_window(contact),
            send_at=self.send_at,
        )
        return next_due(cadence, after=after, last_due=last_due)

    def closes_at(self, due_at: datetime, every: timedelta) -> datetime:
        return due_at + answer_window(every, cap=self.answer_window_cap)

    def reminders(
        self, contact: Contact, *, due_at: datetime, closes_at: datetime, opened_at: datetime
    ) -> list[datetime]:
        return checkin_reminders(
            due_at=due_at,
            closes_at=closes_at,
            opened_at=opened_at,
            zone=_zone(contact.time_zone),
            window=_window(contact),
        )

    def deliver(
        self,
        contact: Contact,
        *,
        purpose: str,
        urgency: str,
        now: datetime,
        sent_today: int,
        suppressed_because: str | None,
    ) -> Delivery:
        decision = decide_for_patient(
            purpose=purpose,
            urgency=urgency,
            contact=_patient_contact(contact, self.daily_budget),
            now=now,
            suppressed_because=suppressed_because,
            sent_today=lambda: sent_today,
        )
        if decision.outcome == SEND:
            return Delivery("send")
        if decision.outcome == MessageStatus.DEFERRED:
            return Delivery("deferred", decision.not_before)
        return Delivery(str(decision.outcome))

    def day_key(self, contact: Contact, now: datetime) -> str:
        return now.astimezone(_zone(contact.time_zone)).date().isoformat()

    def answers(
        self, instrument: str, target: float | None, rng: random.Random, *, red_flag: bool
    ) -> Mapping[str, Any]:
        return simulated_answers(instrument, target, rng, red_flag=red_flag)

    def score(self, instrument: str, answers: Mapping[str, Any]) -> Scored:
        try:
            result = instrument_score(instrument, answers)
        except AnswerError:
            return Scored(None, ())
        return Scored(result.total, tuple((f.code, f.urgency) for f in result.red_flags))


@lru_cache(maxsize=64)
def _patient_contact(contact: Contact, budget: int) -> PatientContact:
    return PatientContact(
        time_zone=contact.time_zone,
        window_start=contact.window_start,
        window_end=contact.window_end,
        preferred_channel=DeliveryChannel.SMS,
        fallback_channel=DeliveryChannel.IN_APP,
        phone="+15550100000",
        email="",
        daily_budget=budget,
    )


def clinic_rules() -> CarehubRules:
    """The rules with this carehub's settings (check-in time, answer window, budget, misses)."""
    return CarehubRules(
        misses_before_task=settings.CHECKIN_MISSES_BEFORE_TASK,
        daily_budget=settings.MESSAGING_PATIENT_DAILY_BUDGET,
        answer_window_cap=timedelta(hours=settings.CHECKIN_ANSWER_WINDOW_HOURS),
        send_at=settings.CHECKIN_SEND_TIME,
    )


# --- answers ---------------------------------------------------------------------------------

RED_FLAG_ITEMS = {"phq9": "item9"}


@lru_cache(maxsize=64)
def _instrument(key: str) -> Any:
    return instrument_get(key)


def simulated_answers(
    instrument: str, target: float | None, rng: random.Random, *, red_flag: bool = False
) -> dict[str, Any]:
    """A valid answer set for `instrument` whose score is about `target` (a mean instrument's
    items near it, a sum instrument's items adding up to it); without a target, plausible
    answers item by item. `red_flag`: the instrument's red-flag item is answered positively
    (PHQ-9 item 9 at least 1). Yes/no items (new weakness, fever, ...) are answered no."""
    definition = _instrument(instrument)
    rule = definition.scoring.rule
    flag_item = RED_FLAG_ITEMS.get(instrument)
    answers: dict[str, Any] = {}
    numeric = [i for i in definition.items if i.scored and i.numeric and not i.optional]
    for item in definition.items:
        if item.optional or not item.numeric:
            if item.type == "yes_no" and not item.optional:
                answers[item.key] = False
            continue
        low, high = item.answer_minimum or 0, item.answer_maximum or 0
        if item.type == "number":
            high = min(high, low + 60)
        if target is None or not item.scored:
            answers[item.key] = rng.randint(int(low), int(high))
        elif rule == "sum":
            answers[item.key] = min(max(round(target / max(len(numeric), 1)), low), high)
        else:
            answers[item.key] = min(max(round(target + rng.gauss(0, 0.6)), low), high)
    if flag_item is not None and flag_item in answers:
        answers[flag_item] = rng.randint(1, 3) if red_flag else 0
    if target is not None and rule == "sum" and numeric:
        _adjust_sum(answers, numeric, round(target), rng, keep=flag_item)
    return answers


def _adjust_sum(
    answers: dict[str, Any], items: list[Any], total: int, rng: random.Random, *, keep: str | None
) -> None:
    adjustable = [i for i in items if i.key != keep]
    for _ in range(200):
        current = sum(answers[i.key] for i in items)
        if current == total:
            return
        step = 1 if current < total else -1
        candidates = [
            i
            for i in adjustable
            if (i.answer_minimum or 0) <= answers[i.key] + step <= (i.answer_maximum or 0)
        ]
        if not candidates:
            return
        answers[rng.choice(candidates).key] += step


# --- the command: `manage.py pathway simulate` ------------------------------------------------


def add_simulate_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("pathway", help="a published pathway key, or a definition file")
    parser.add_argument("--version", type=int, dest="pathway_version", default=None)
    parser.add_argument("--cohort", type=Path, required=True, help="the cohort file (YAML)")
    parser.add_argument("--days", type=int, default=365, help="how long to simulate (days)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--patients", type=int, default=None, help="how many patients (default: the cohort's)"
    )
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=None,
        help="threshold values for this run (YAML: name: {value: .., source: ..})",
    )
    parser.add_argument(
        "--clinic",
        default=None,
        help="a clinic's slug: its threshold settings for this pathway apply to every run "
        "(--thresholds and --against files override them)",
    )
    parser.add_argument(
        "--against",
        default=None,
        help="a second definition (published key or file) or a thresholds file: the same cohort "
        "and seed run under it too, and the report shows the differences",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("simulation"),
        help="directory for report.json and report.html (default: ./simulation)",
    )


def run_simulate(
    command: BaseCommand,
    options: dict[str, Any],
    definition_for: Callable[[str, int | None], PathwayDefinition],
) -> dict[str, Any]:
    days, patients = options["days"], options["patients"]
    if days < 1 or days > 3660:
        raise CommandError("--days must be between 1 and 3660")
    if patients is not None and not 1 <= patients <= 100_000:
        raise CommandError("--patients must be between 1 and 100000")
    definition = definition_for(options["pathway"], options["pathway_version"])
    cohort = _cohort(options["cohort"], definition)
    clinic = _clinic_thresholds(options["clinic"], definition) if options["clinic"] else {}
    thresholds = {
        **clinic,
        **(_thresholds(options["thresholds"], definition) if options["thresholds"] else {}),
    }
    other_definition, other_thresholds = definition, thresholds
    against = options["against"]
    if against:
        path = Path(against)
        if path.suffix in (".yaml", ".yml") and path.is_file() and _is_thresholds(path):
            other_thresholds = {**thresholds, **_thresholds(path, definition)}
        else:
            other_definition = definition_for(against, None)
            other_thresholds = {
                name: value
                for name, value in thresholds.items()
                if name in other_definition.thresholds
            }
            problems = validate_against(cohort, other_definition)
            if problems:
                raise CommandError(describe_problems(str(options["cohort"]), problems))
    rules = clinic_rules()
    seed = options["seed"]

    def simulate(pathway: PathwayDefinition, values: dict[str, ThresholdValue]) -> dict[str, Any]:
        """One run: the same cohort, seed, length and rules whichever definition it runs."""
        return run_report(
            pathway, cohort, days=days, seed=seed, thresholds=values, patients=patients, rules=rules
        )

    command.stdout.write(
        f"simulating {patients or cohort.patients} patients of {cohort.name} through "
        f"{definition.ref} for {days} days (seed {seed})"
    )
    report = simulate(definition, thresholds)
    comparison = None
    other = None
    if against:
        command.stdout.write(f"... and against {other_definition.ref} {_label(other_thresholds)}")
        other = simulate(other_definition, other_thresholds)
        comparison = compare(report, other)
    out: Path = options["out"]
    out.mkdir(parents=True, exist_ok=True)
    document = {**report, "comparison": comparison, "against": other}
    (out / "report.json").write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    (out / "report.html").write_text(render(report, comparison), encoding="utf-8")
    coverage = report["coverage"]
    command.stdout.write(
        f"states reached {coverage['states_reached']}/{coverage['states_total']}, transitions "
        f"taken {coverage['transitions_taken']}/{coverage['transitions_total']}; "
        f"wrote {out / 'report.json'} and {out / 'report.html'}"
    )
    for name in coverage["unreached_states"]:
        command.stdout.write(f"  unreached state: {name}")
    for text in coverage["untaken_transitions"]:
        command.stdout.write(f"  untaken transition: {text}")
    return document


def run_report(
    definition: PathwayDefinition,
    cohort: Cohort,
    *,
    days: int,
    seed: int,
    thresholds: dict[str, ThresholdValue] | None = None,
    patients: int | None = None,
    rules: CarehubRules | None = None,
) -> dict[str, Any]:
    """Simulate and build the report, with carehub's rules (`clinic_rules()` unless given)."""
    if rules is None:
        rules = clinic_rules()
    thresholds = thresholds or {}
    tally = Simulation(
        definition, cohort, rules, days=days, seed=seed, thresholds=thresholds, patients=patients
    ).run()
    report = build_report(definition, cohort, tally, seed=seed, thresholds=thresholds)
    report["messages"]["daily_budget"] = rules.daily_budget
    return report


def _label(thresholds: dict[str, ThresholdValue]) -> str:
    return ", ".join(f"{k} = {v.value}" for k, v in thresholds.items())


def load_builtin_cohort(definition: PathwayDefinition) -> Cohort:
    return _cohort(COHORTS_DIR / f"{definition.key}.yaml", definition)


COHORTS_DIR = Path(__file__).resolve().parent / "cohorts"


def _cohort(path: Path, definition: PathwayDefinition) -> Cohort:
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    try:
        cohort = load_cohort(path)
    except CohortError as exc:
        raise CommandError(str(exc)) from exc
    problems = validate_against(cohort, definition)
    if problems:
        raise CommandError(describe_problems(str(path), problems))
    return cohort


def _clinic_thresholds(slug: str, definition: PathwayDefinition) -> dict[str, ThresholdValue]:
    """The clinic's own values for the pathway's thresholds, as its enrolments read them."""
    from carehub.clinics.models import Clinic
    from carehub.clinics.selectors import threshold_list_for_clinic

    clinic = Clinic.objects.filter(slug=slug).first()
    if clinic is None:
        raise CommandError(f"no clinic '{slug}'")
    return {
        view.name: ThresholdValue(view.value, view.source)
        for view in threshold_list_for_clinic(clinic_id=clinic.pk)
        if view.overridden
        and view.pathway_key == definition.key
        and view.name in definition.thresholds
    }


def _is_thresholds(path: Path) -> bool:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and "tracks" not in data and "key" not in data


def _thresholds(path: Path, definition: PathwayDefinition) -> dict[str, ThresholdValue]:
    """A thresholds file: `name: {value: 50, source: "ASRA 2020"}` (or `name: 50`)."""
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise CommandError(f"{path}: a thresholds file maps threshold names to values")
    result: dict[str, ThresholdValue] = {}
    problems = []
    for name, entry in data.items():
        if name not in definition.thresholds:
            problems.append(f"{definition.ref} has no threshold {name!r}")
            continue
        value, source = (
            (entry.get("value"), entry.get("source", f"{path.name}"))
            if isinstance(entry, dict)
            else (entry, path.name)
        )
        default = definition.thresholds[name].default
        numeric = isinstance(default, int | float) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{name}: {value!r} is not a number")
            continue
        result[name] = ThresholdValue(value, str(source))
    if problems:
        raise CommandError(f"{path}: " + "; ".join(problems))
    return result
