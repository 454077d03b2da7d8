"""Reads for the patient portal: the patient's own record (through `care_access`), what is due,
their scores over time in plain words, and where they are on their pathway.

Every function takes the patient already fetched through `patient_for_user`, so nothing here can
reach another patient's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import dateformat, formats
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from carehub.accounts.models import Role, User
from carehub.care_access import patients_visible_to
from carehub.charts import score_chart
from carehub.checkins.instruments import instrument_name
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.core.exceptions import NotFound
from carehub.instruments.catalogue import Entry, Names, meets_mcid, progress_instruments
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get
from carehub.observations.models import Kind
from carehub.observations.selectors import current_observations
from carehub.pathways.dispatch.codec import configuration_from_json
from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.pathways.registry import definition_get
from carehub.patients.models import Patient
from carehub.portal.pathway_texts import StateText, state_text, track_title

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# Scores a patient sees on "My progress", in this order, with plain names and nouns: the
# catalogue's (`carehub.instruments.catalogue.progress_instruments`).
PROGRESS_INSTRUMENTS: dict[str, StrOrPromise] = {
    key: names.progress
    for key, names in progress_instruments().items()
    if names.progress is not None
}
NOUNS: dict[str, StrOrPromise] = {
    key: names.noun for key, names in progress_instruments().items() if names.noun is not None
}


def patient_for_user(user: User) -> Patient:
    """The logged-in patient's own record; NotFound for anyone else (staff included)."""
    if getattr(user, "role", None) != Role.PATIENT:
        raise NotFound("No patient record for this account.")
    patient = patients_visible_to(user).select_related("clinic").first()
    if patient is None:
        raise NotFound("No patient record for this account.")
    return patient


# --- check-ins --------------------------------------------------------------------------------


def checkin_title(instrument: str) -> str:
    """The instrument's one patient-facing name, in the active language ("Mood check-in")."""
    return instrument_name(instrument)


def open_checkins(*, patient: Patient, now: datetime) -> list[Checkin]:
    """Check-ins the patient can answer now, the one closing first first."""
    return list(
        Checkin.objects.filter(patient=patient, status=CheckinStatus.OPEN, closes_at__gt=now)
        .select_related("enrolment")
        .order_by("closes_at", "pk")
    )


def upcoming_checkins(*, patient: Patient, now: datetime, limit: int = 5) -> list[Checkin]:
    return list(
        Checkin.objects.filter(
            patient=patient, status=CheckinStatus.SCHEDULED, due_at__gt=now
        ).order_by("due_at", "pk")[:limit]
    )


def recent_checkins(*, patient: Patient, limit: int = 5) -> list[Checkin]:
    return list(
        Checkin.objects.filter(
            patient=patient, status__in=[CheckinStatus.ANSWERED, CheckinStatus.MISSED]
        ).order_by("-due_at", "-pk")[:limit]
    )


def checkin_for_patient(*, patient: Patient, checkin_id: int) -> Checkin:
    """One of the patient's own check-ins; NotFound for anyone else's."""
    checkin = (
        Checkin.objects.select_related("patient", "series", "enrolment")
        .filter(patient=patient, pk=checkin_id)
        .first()
    )
    if checkin is None:
        raise NotFound("No such check-in.")
    return checkin


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float


@dataclass
class Progress:
    instrument: str
    name: str
    points: list[Point]
    better: str  # "lower" or "higher"
    scale: str  # "0 to 10"
    summary: str
    verdict: str  # "better", "worse", "same", "" (one score only)
    band: str
    chart: str = ""  # inline SVG (carehub.charts), "" without a chart
    source: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)


def _number(value: float) -> str:
    """One decimal at most, with the active language's decimal separator (7.3, 7,3)."""
    text = f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return text.replace(".", str(formats.get_format("DECIMAL_SEPARATOR")))


def _since(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    if local.year == now.astimezone(zone).year:
        return _("since %(month)s") % {"month": dateformat.format(local, "F")}
    return _("since %(month)s %(year)s") % {
        "month": dateformat.format(local, "F"),
        "year": local.year,
    }


def _meaningful(definition: InstrumentDefinition, baseline: float, improvement: float) -> bool:
    """An improvement (positive, in points) reaching the MCID: the catalogue's rule."""
    if improvement <= 0:
        return False
    found = Entry(definition, Names())
    latest = baseline + improvement if found.higher_is_better else baseline - improvement
    return meets_mcid(found, baseline, latest) is True


def describe_change(
    *,
    definition: InstrumentDefinition,
    noun: str,
    points: list[Point],
    now: datetime,
    zone: ZoneInfo,
) -> tuple[str, str]:
    """(a sentence in plain words, a verdict): first score against the latest, judged by the
    instrument's minimal clinically important difference (MCID)."""
    latest = points[-1]
    if len(points) == 1:
        once = _(
            "Your %(noun)s was %(value)s. We'll show the change over time once you have answered "
            "again."
        )
        return once % {"noun": noun, "value": _number(latest.value)}, ""
    first = points[0]
    lower_better = definition.direction != "higher_is_better"
    # Judge the change the patient reads: the numbers as shown (one decimal).
    shown_first, shown_latest = round(first.value, 1), round(latest.value, 1)
    improvement = shown_first - shown_latest if lower_better else shown_latest - shown_first
    went = {
        "noun": noun,
        "first": _number(first.value),
        "latest": _number(latest.value),
        "since": _since(first.at, now, zone),
    }
    if _meaningful(definition, shown_first, improvement):
        return _(
            "Your %(noun)s went from %(first)s to %(latest)s %(since)s: that's a meaningful "
            "improvement."
        ) % went, "better"
    if _meaningful(definition, shown_first, -improvement):
        return (
            _(
                "Your %(noun)s went from %(first)s to %(latest)s %(since)s. That's more than a "
                "small change, in the wrong direction. Your care team sees these answers too; if "
                "you are struggling, tell them."
            )
            % went,
            "worse",
        )
    if improvement > 0.05:
        return _(
            "Your %(noun)s went from %(first)s to %(latest)s %(since)s: a little better, though "
            "not yet a big change."
        ) % went, "same"
    if improvement < -0.05:
        return _(
            "Your %(noun)s went from %(first)s to %(latest)s %(since)s: a little higher, though "
            "not a big change."
        ) % went, "same"
    return _(
        "Your %(noun)s went from %(first)s to %(latest)s %(since)s: about the same."
    ) % went, "same"


def _reference_source(definition: InstrumentDefinition) -> str:
    return Entry(definition, Names()).mcid_source_shown


def progress_for(*, patient: Patient, now: datetime) -> list[Progress]:
    """One entry per instrument the patient has scores for, oldest score first."""
    zone = ZoneInfo(patient.time_zone)
    rows = (
        current_observations(patient=patient)
        .filter(kind=Kind.SCORE, code__in=list(PROGRESS_INSTRUMENTS), observed_at__lte=now)
        .order_by("observed_at", "pk")
        .values_list("code", "observed_at", "value_number")
    )
    series: dict[str, list[Point]] = {}
    for code, observed_at, value in rows:
        if value is not None:
            series.setdefault(code, []).append(Point(observed_at, float(value)))
    result = []
    for code, name in PROGRESS_INSTRUMENTS.items():
        points = series.get(code)
        if not points:
            continue
        try:
            definition = instrument_get(code)
        except UnknownInstrument:
            continue
        name = str(name)
        day_format = pgettext("date format, e.g. 02 Jun 2026", "d M Y")
        summary, verdict = describe_change(
            definition=definition, noun=str(NOUNS[code]), points=points, now=now, zone=zone
        )
        band = definition.bands.label_for(points[-1].value) if definition.bands else None
        # The band's label as the instrument's source names it, translated (context "score band").
        band = pgettext("score band", band) if band else None
        low = definition.scoring.minimum if definition.scoring.minimum is not None else 0
        high = definition.scoring.maximum if definition.scoring.maximum is not None else 10
        better = "higher" if definition.direction == "higher_is_better" else "lower"
        result.append(
            Progress(
                instrument=code,
                name=name,
                points=points,
                better=better,
                scale=_("%(low)s to %(high)s") % {"low": _number(low), "high": _number(high)},
                summary=summary,
                verdict=verdict,
                band=band or "",
                chart=score_chart(
                    points=[(p.at, p.value) for p in points],
                    low=low,
                    high=high,
                    zone=zone,
                    series_label=_("Your score"),
                    labelledby=f"p-{code}",
                    describedby=f"s-{code}",
                    css_class="chart",
                ),
                source=_reference_source(definition),
                details=[
                    (dateformat.format(p.at.astimezone(zone), day_format), _number(p.value))
                    for p in reversed(points)
                ],
            )
        )
    return result


# --- what comes next --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackStep:
    track: str
    track_title: str
    state: str
    text: StateText
    since: datetime
    final: bool


@dataclass(frozen=True)
class PathwayPlace:
    enrolment: Enrolment
    title: str
    paused: bool
    steps: list[TrackStep]


def enrolments_for(*, patient: Patient) -> QuerySet[Enrolment]:
    return Enrolment.objects.filter(patient=patient).order_by("-started_at", "-pk")


def what_next_for(*, patient: Patient) -> list[PathwayPlace]:
    """For each of the patient's open enrolments (and the last closed one, when none is open),
    each track's current step in plain words; the main track first."""
    enrolments = list(enrolments_for(patient=patient))
    shown = [e for e in enrolments if e.status != EnrolmentStatus.COMPLETED] or enrolments[:1]
    places = []
    for enrolment in shown:
        definition = definition_get(enrolment.definition_key, enrolment.definition_version)
        configuration = configuration_from_json(enrolment.configuration)
        steps = []
        for name, track in definition.tracks.items():
            current = configuration.get(name)
            if current is None:
                continue
            state = track.states[current.state]
            steps.append(
                TrackStep(
                    track=name,
                    track_title=track_title(
                        key=definition.key,
                        version=definition.version,
                        track=name,
                        fallback=track.title or name,
                    ),
                    state=current.state,
                    text=state_text(
                        key=definition.key,
                        version=definition.version,
                        track=name,
                        state=current.state,
                        fallback_title=state.title or current.state,
                    ),
                    since=current.entered_at,
                    final=state.final,
                )
            )
        places.append(
            PathwayPlace(
                enrolment=enrolment,
                title=_("Your care plan"),
                paused=enrolment.status == EnrolmentStatus.PAUSED,
                steps=steps,
            )
        )
    return places
