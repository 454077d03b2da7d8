"""The demo's sandbox clinic (ADR 0024): for trainers. A few patients at intake, their baselines
recorded and their pathway started on the clinic's test clock, and its own logins
(`sandbox-admin` moves the clock). A trainer completes an intake on the patient page, then walks
the patient up the ladder in minutes by advancing the clock (page *Test clock*, or the API).
Nothing is replayed here: the seed stays fast."""

from __future__ import annotations

from datetime import date

from carehub.accounts.models import Role, User
from carehub.clinics.clock import clinic_time
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.demo.seeding import demo_intake_history_record, demo_staff_ensure
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import EffectStatus, Enrolment, OutboxEffect
from carehub.pathways.services import enrolment_start
from carehub.patients.models import Channel, Patient
from carehub.patients.services import care_team_add, patient_register

SANDBOX_SLUG = "sandbox"
SANDBOX_NAME = "Sandbox Pain Clinic (training)"
PATHWAY = "intractable-pain"

SANDBOX_STAFF: list[tuple[str, Role, str, str]] = [
    ("sandbox-admin", Role.CLINIC_ADMIN, "Sam", "Trainer"),
    ("sandbox-nurse", Role.COORDINATOR, "Nia", "Coordinator"),
    ("sandbox-physician", Role.PHYSICIAN, "Paul", "Physician"),
    ("sandbox-physio", Role.PHYSICAL_THERAPIST, "Tess", "Physio"),
    ("sandbox-psych", Role.PSYCHOLOGIST, "Sol", "Psychologist"),
]

# MRN, given name, family name, baseline PEG, PHQ-9, GAD-7.
SANDBOX_PATIENTS: list[tuple[str, str, str, float, int, int]] = [
    ("SB-2001", "Avery", "Stone", 7.6, 9, 7),
    ("SB-2002", "Blake", "Rivers", 8.1, 12, 9),
    ("SB-2003", "Casey", "Moor", 6.9, 7, 6),
]


def demo_sandbox_seed(*, password: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Create the sandbox clinic once (idempotent): what was created, and its logins."""
    created: list[str] = []
    clinic = Clinic.objects.filter(slug=SANDBOX_SLUG).first()
    if clinic is None:
        clinic = clinic_create(
            name=SANDBOX_NAME, slug=SANDBOX_SLUG, time_zone="America/New_York", sandbox=True
        )
        created.append(f"sandbox clinic {SANDBOX_SLUG}")
    staff, staff_created = demo_staff_ensure(
        clinic=clinic, people=SANDBOX_STAFF, password=password, email_domain="sandbox.example"
    )
    created.extend(staff_created)
    logins = [
        (username, f"{role.label} (sandbox clinic, test clock)")
        for username, role, _first, _last in SANDBOX_STAFF
    ]
    with clinic_time(clinic):
        for mrn, given, family, peg, phq9, gad7 in SANDBOX_PATIENTS:
            if Patient.objects.filter(clinic=clinic, mrn=mrn).exists():
                continue
            patient = patient_register(
                clinic=clinic,
                mrn=mrn,
                given_name=given,
                family_name=family,
                time_zone="America/New_York",
                date_of_birth=date(1970, 1, 1),
                email=f"{given.lower()}@sandbox-patients.example",
                phone="+15555550199",
                preferred_channel=Channel.SMS,
            )
            for role in (
                Role.COORDINATOR,
                Role.PHYSICIAN,
                Role.PHYSICAL_THERAPIST,
                Role.PSYCHOLOGIST,
            ):
                care_team_add(
                    patient=patient, staff=staff[role], is_primary=role is Role.COORDINATOR
                )
            _at_intake(patient, staff, peg=peg, phq9=phq9, gad7=gad7)
            created.append(f"sandbox patient {mrn}")
    return created, logins


def _at_intake(
    patient: Patient, staff: dict[Role, User], *, peg: float, phq9: int, gad7: int
) -> None:
    """Baselines and history recorded, the pathway started: the intake waits to be completed."""
    by, now = staff[Role.COORDINATOR], clock.now()
    demo_intake_history_record(
        patient,
        by,
        staff[Role.PSYCHOLOGIST],
        now,
        pain_years=3,
        failed=("nsaid", "snri", "gabapentinoid"),
        peg=peg,
        phq9=phq9,
        gad7=gad7,
    )
    enrolment = enrolment_start(patient=patient, definition_key=PATHWAY, started_by=by)
    _run_effects(enrolment)


def _run_effects(enrolment: Enrolment) -> None:
    """What a worker does with the pathway's effects (the intake task), done here."""
    pending = OutboxEffect.objects.filter(enrolment=enrolment, status=EffectStatus.PENDING)
    for effect_id in pending.order_by("pk").values_list("pk", flat=True):
        effect_execute(effect_id=effect_id)
