"""The bulk export's fast path (ADR 0023): resources built with `validate=False` are the very
JSON the validated builders serve, and valid R4, for every branch of every builder.

Two halves. A realistic patient with every resource kind goes through `export_run` and each
ndjson line equals what the read endpoints build (and validate) for the same row. Then each
builder is given arbitrary values where the data supplies them (any text, numbers out of range,
not-a-number, optional parts present or not, every instrument and pathway of the library):
either both ways refuse the resource (`ResourceInvalid`, a value that breaks its FHIR type), or
both give the same JSON and the fhir.resources model accepts it."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carehub.checkins.services import checkin_submit
from carehub.fhir import resources
from carehub.fhir.export import EXPORT_TYPES, SAMPLE_EVERY, export_run
from carehub.fhir.models import ExportJob, ExportStatus
from carehub.fhir.resources import ResourceInvalid
from carehub.fhir.selectors import PATIENT_DATA_TYPES
from carehub.instruments.registry import instruments
from carehub.observations.scores import score_observation_record
from carehub.pathways.models import EnrolmentStatus
from carehub.pathways.registry import registry
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, Flag, FlagStatus, TaskStatus
from carehub.worklists.services import flag_set_status
from tests.api.conftest import open_checkin
from tests.fhir.support import valid

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def both_ways(build: Callable[[bool], dict[str, Any]]) -> dict[str, Any] | None:
    """The fast build equals the validated one and is valid, or both refuse the resource."""
    try:
        fast = build(False)
    except ResourceInvalid:
        with pytest.raises(ResourceInvalid):
            build(True)
        return None
    valid(fast)
    assert build(True) == fast
    return fast


# --- a realistic patient through export_run --------------------------------------------------


def test_the_export_serves_what_the_validated_builders_build(staff, enrolment, task, flag) -> None:  # type: ignore[no-untyped-def]
    patient = enrolment.patient
    Patient.objects.filter(pk=patient.pk).update(
        phone="+447700900123", email="alice@example.org", date_of_birth=date(1970, 5, 17)
    )
    for instrument, answers in (
        ("phq9", {f"item{n}": 1 for n in range(1, 10)}),  # item 9: a red flag
        ("peg", {"pain": 6, "enjoyment": 5, "activity": 7}),
        ("gad7", {f"item{n}": 2 for n in range(1, 8)}),
    ):
        checkin = open_checkin(enrolment, instrument)
        checkin_submit(checkin_id=checkin.pk, answers=answers)
    score_observation_record(  # a score without a check-in (no derivedFrom)
        patient=patient, instrument="peg", items={"pain": 3, "enjoyment": 3, "activity": 2},
        observed_at=django_timezone.now(), source="staff", recorded_by=staff["physician"],
    )  # fmt: skip
    flag_set_status(flag=flag, status=FlagStatus.RESOLVED, user=staff["physician"], outcome="Seen")
    CareTask.objects.create(
        clinic=patient.clinic, patient=patient, discipline="physician", title="Call her back",
        status=TaskStatus.DONE, priority="urgent", due_at=django_timezone.now(),
    )  # fmt: skip
    user = staff["coordinator"]
    job = ExportJob.objects.create(
        clinic=user.clinic, requested_by=user, types=list(EXPORT_TYPES), request_url="/"
    )
    assert export_run(job_id=job.pk) == ExportStatus.COMPLETED

    files = {f.resource_type: f.content.splitlines() for f in job.files.all()}
    for name, spec in PATIENT_DATA_TYPES.items():
        rows = list(spec.queryset(user).order_by("pk"))
        served = [json.dumps(r, separators=(",", ":")) for r in spec.build(rows)]
        assert files[name] == served, name
        assert served, f"no {name} in the realistic patient's export"
        for line in files[name]:
            valid(json.loads(line))
    kinds = {json.loads(line)["code"]["coding"][-1]["code"] for line in files["Observation"]}
    assert kinds == {"phq9", "peg", "gad7"}
    assert Flag.objects.filter(status=FlagStatus.RESOLVED).exists()
    assert {json.loads(line)["status"] for line in files["Flag"]} == {"active", "inactive"}
    assert {json.loads(line)["status"] for line in files["Task"]} == {"requested", "completed"}


def test_a_sampled_resource_the_model_refuses_fails_the_export(staff, patient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The sample is checked: a builder emitting an invalid resource fails the job."""
    real = resources.patient
    monkeypatch.setattr(
        resources, "patient", lambda row, **kw: {**real(row, **kw), "birthDate": "yesterday"}
    )
    user = staff["coordinator"]
    job = ExportJob.objects.create(
        clinic=user.clinic, requested_by=user, types=["Patient"], request_url="/"
    )
    assert SAMPLE_EVERY > 1
    assert export_run(job_id=job.pk) == ExportStatus.FAILED
    job.refresh_from_db()
    assert job.error == "ResourceInvalid"
    assert not job.files.exists()


# --- every builder, arbitrary values -----------------------------------------------------------

TEXT = st.text(max_size=40)
CODE_LIKE = st.one_of(TEXT, st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True))
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)),
     timezone(timedelta(seconds=90))]  # the last: not an offset FHIR can write
)  # fmt: skip
MOMENTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=ZONES
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
)
ANSWERS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, st.lists(st.integers(), max_size=2))
INSTRUMENTS = st.deferred(
    lambda: st.sampled_from(sorted(instruments(), key=lambda d: (d.key, d.version)))
)
PATHWAYS = st.deferred(
    lambda: st.sampled_from(sorted(registry(), key=lambda d: (d.key, d.version)))
)


@EXAMPLES
@given(
    values=st.fixed_dictionaries(
        {"mrn": TEXT, "given_name": TEXT, "family_name": TEXT, "phone": TEXT, "email": TEXT,
         "language": CODE_LIKE, "time_zone": CODE_LIKE, "active": st.booleans(),
         "date_of_birth": st.one_of(st.none(), st.dates()), "updated_at": MOMENTS,
         "pk": st.integers(1, 2**31)}
    ),
    slug=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
)  # fmt: skip
def test_patient(values: dict[str, Any], slug: str) -> None:
    row = SimpleNamespace(**values, clinic=SimpleNamespace(slug=slug))
    both_ways(lambda check: resources.patient(row, validate=check))


@EXAMPLES
@given(
    definition=st.one_of(st.none(), INSTRUMENTS),
    code=CODE_LIKE,
    value=st.one_of(st.none(), NUMBERS),
    band=st.one_of(st.none(), TEXT),
    items=st.dictionaries(CODE_LIKE, st.integers(-(2**33), 2**33), max_size=4),
    use_items_of_definition=st.booleans(),
    checkin_id=st.one_of(st.none(), st.integers(1, 2**31)),
    moments=st.tuples(MOMENTS, MOMENTS, MOMENTS),
    entered_in_error=st.booleans(),
)
def test_score_observation(  # type: ignore[no-untyped-def]
    definition,
    code,
    value,
    band,
    items,
    use_items_of_definition,
    checkin_id,
    moments,
    entered_in_error,
) -> None:
    if definition is not None and use_items_of_definition:
        items = {item.key: 1 for item in definition.items}
        code = definition.key
    row = SimpleNamespace(
        pk=7, patient_id=3, code=code, value_number=value,
        data={"band": band, "items": items}, observed_at=moments[0], created_at=moments[1],
        updated_at=moments[2], entered_in_error=entered_in_error,
    )  # fmt: skip
    built = both_ways(
        lambda check: resources.score_observation(row, definition, checkin_id, validate=check)
    )
    if built is not None and value is not None and not math.isfinite(value):
        pytest.fail("a score that is not a finite number was emitted")


@EXAMPLES
@given(
    definition=INSTRUMENTS,
    extra=st.dictionaries(TEXT, ANSWERS, max_size=3),
    choice=st.integers(-3, 12),
    moments=st.tuples(MOMENTS, st.one_of(st.none(), MOMENTS)),
    light=st.booleans(),
)
def test_questionnaire_response(definition, extra, choice, moments, light) -> None:  # type: ignore[no-untyped-def]
    answers: dict[str, Any] = {item.key: choice for item in definition.items}
    answers.update(extra)
    plan = uuid.uuid4()
    fields = {"pk": 11, "patient_id": 3, "answers": answers, "updated_at": moments[0],
              "answered_at": moments[1]}  # fmt: skip
    # A model row reaches its enrolment; the export's light row carries the id itself.
    row = (
        SimpleNamespace(**fields, care_plan_id=plan)
        if light
        else SimpleNamespace(**fields, enrolment=SimpleNamespace(public_id=plan))
    )
    built = both_ways(
        lambda check: resources.questionnaire_response(row, definition, validate=check)
    )
    if built is not None:
        assert built["basedOn"] == [{"reference": f"CarePlan/{plan}"}]


@EXAMPLES
@given(
    definition=st.one_of(st.none(), PATHWAYS),
    key=CODE_LIKE,
    tracks=st.dictionaries(
        CODE_LIKE,
        st.fixed_dictionaries(
            {"state": CODE_LIKE, "entered_at": st.one_of(TEXT, MOMENTS.map(str),
                                                          MOMENTS.map(datetime.isoformat),
                                                          st.just({"at": 1}))}
        ),
        max_size=3,
    ),
    use_tracks_of_definition=st.booleans(),
    status=st.sampled_from(list(EnrolmentStatus)),
    moments=st.tuples(MOMENTS, MOMENTS, MOMENTS, st.one_of(st.none(), MOMENTS)),
    open_tasks=st.lists(st.integers(1, 2**31), max_size=3),
)  # fmt: skip
def test_care_plan(  # type: ignore[no-untyped-def]
    definition, key, tracks, use_tracks_of_definition, status, moments, open_tasks
) -> None:
    if definition is not None and use_tracks_of_definition:
        key = definition.key
        tracks = {
            name: {"state": next(iter(track.states)), "entered_at": moments[0].isoformat()}
            for name, track in definition.tracks.items()
        }
    row = SimpleNamespace(
        public_id=uuid.uuid4(), patient_id=3, definition_key=key,
        definition_version=definition.version if definition is not None else 1,
        configuration=tracks, status=status, updated_at=moments[0], started_at=moments[1],
        created_at=moments[2], completed_at=moments[3],
    )  # fmt: skip
    both_ways(lambda check: resources.care_plan(row, definition, open_tasks, validate=check))


@EXAMPLES
@given(
    values=st.fixed_dictionaries(
        {"title": TEXT, "discipline": CODE_LIKE, "track": CODE_LIKE, "state": CODE_LIKE,
         "status": st.sampled_from(list(TaskStatus)),
         "priority": st.sampled_from(["routine", "urgent"]),
         "due_at": st.one_of(st.none(), MOMENTS), "created_at": MOMENTS, "updated_at": MOMENTS}
    ),
    based_on=st.booleans(),
)  # fmt: skip
def test_task(values: dict[str, Any], based_on: bool) -> None:
    plan = SimpleNamespace(public_id=uuid.uuid4())
    row = SimpleNamespace(
        **values, pk=5, patient_id=3, enrolment_id=1 if based_on else None,
        enrolment=plan if based_on else None,
    )  # fmt: skip
    both_ways(lambda check: resources.task(row, validate=check))


@EXAMPLES
@given(
    values=st.fixed_dictionaries(
        {"code": CODE_LIKE, "severity": CODE_LIKE, "message": TEXT,
         "status": st.sampled_from(list(FlagStatus)), "raised_at": MOMENTS,
         "resolved_at": st.one_of(st.none(), MOMENTS), "updated_at": MOMENTS}
    )
)  # fmt: skip
def test_flag(values: dict[str, Any]) -> None:
    row = SimpleNamespace(**values, pk=9, patient_id=3)
    both_ways(lambda check: resources.flag(row, validate=check))
