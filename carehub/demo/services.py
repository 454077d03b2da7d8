"""The demo clinic seeded by `make demo`: staff of every discipline and a set of patients.

Idempotent: every record is looked up by its natural key first, so running it again changes
nothing and creates nothing twice.
"""

from dataclasses import dataclass, field
from datetime import date, time

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.demo.histories import demo_history_build
from carehub.patients.models import Channel, Patient
from carehub.patients.services import care_team_add, patient_account_create, patient_register

DEMO_CLINIC_SLUG = "riverside"
# Demo logins only exist in a local demo database; production never runs the seed.
DEMO_PASSWORD = "carehub-demo"  # noqa: S105

DEMO_STAFF: list[tuple[str, Role, str, str]] = [
    ("admin", Role.CLINIC_ADMIN, "Alex", "Admin"),
    ("nurse", Role.COORDINATOR, "Nora", "Okafor"),
    ("physician", Role.PHYSICIAN, "Priya", "Raman"),
    ("physio", Role.PHYSICAL_THERAPIST, "Tom", "Fischer"),
    ("psych", Role.PSYCHOLOGIST, "Sara", "Lindqvist"),
    ("pharmacist", Role.PHARMACIST, "Marco", "Bianchi"),
]

DEMO_PORTAL_MRN = "RP-1002"
DEMO_PORTAL_USERNAME = "james"

DEMO_PATIENTS: list[dict[str, object]] = [
    {
        "mrn": "RP-1001",
        "given_name": "Maria",
        "family_name": "Lopez",
        "time_zone": "America/New_York",
        "date_of_birth": date(1968, 3, 14),
        "preferred_channel": Channel.SMS,
    },
    {
        "mrn": "RP-1002",
        "given_name": "James",
        "family_name": "Whitfield",
        "time_zone": "Europe/London",
        "date_of_birth": date(1975, 9, 2),
        "preferred_channel": Channel.EMAIL,
    },
    {
        "mrn": "RP-1003",
        "given_name": "Aiko",
        "family_name": "Tanaka",
        "time_zone": "America/Los_Angeles",
        "date_of_birth": date(1981, 1, 23),
        "preferred_channel": Channel.SMS,
    },
    {
        "mrn": "RP-1004",
        "given_name": "Samuel",
        "family_name": "Osei",
        "time_zone": "America/Chicago",
        "date_of_birth": date(1959, 11, 5),
        "preferred_channel": Channel.SMS,
    },
    {
        "mrn": "RP-1005",
        "given_name": "Helen",
        "family_name": "Brandt",
        "time_zone": "Europe/Berlin",
        "date_of_birth": date(1972, 6, 30),
        "preferred_channel": Channel.EMAIL,
        "send_window_start": time(10, 0),
        "send_window_end": time(18, 0),
    },
    {
        "mrn": "RP-1006",
        "given_name": "Daniel",
        "family_name": "Reyes",
        "time_zone": "America/Denver",
        "date_of_birth": date(1988, 2, 17),
        "preferred_channel": Channel.IN_APP,
    },
    {
        "mrn": "RP-1007",
        "given_name": "Grace",
        "family_name": "Mbeki",
        "time_zone": "Africa/Johannesburg",
        "date_of_birth": date(1964, 8, 9),
        "preferred_channel": Channel.SMS,
    },
    {
        "mrn": "RP-1008",
        "given_name": "Liam",
        "family_name": "O'Connor",
        "time_zone": "Australia/Sydney",
        "date_of_birth": date(1979, 12, 1),
        "preferred_channel": Channel.EMAIL,
    },
]


@dataclass
class SeedResult:
    clinic: Clinic | None
    created: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


def demo_seed(*, histories: bool = True) -> SeedResult:
    """Each record is written by its own service transaction; histories are built per patient."""
    result = SeedResult(clinic=Clinic.objects.filter(slug=DEMO_CLINIC_SLUG).first())
    if result.clinic is None:
        result.clinic = clinic_create(
            name="Riverside Pain Clinic", slug=DEMO_CLINIC_SLUG, time_zone="America/New_York"
        )
        result.created.append(f"clinic {DEMO_CLINIC_SLUG}")
    clinic = result.clinic

    staff: dict[Role, User] = {}
    for username, role, first, last in DEMO_STAFF:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = staff_create(
                clinic=clinic,
                username=username,
                role=role,
                password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@riverside.example",
                is_staff=role is Role.CLINIC_ADMIN,
            )
            if role is Role.CLINIC_ADMIN:
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
            result.created.append(f"staff {username}")
        staff[role] = user
        result.logins.append((username, role.label))
    staff_by_role = {role.value: user for role, user in staff.items()}

    for spec in DEMO_PATIENTS:
        if Patient.objects.filter(clinic=clinic, mrn=spec["mrn"]).exists():
            continue
        slug = str(spec["given_name"]).lower()
        patient = patient_register(
            clinic=clinic,
            email=f"{slug}@patients.example",
            phone="+15555550100",
            **spec,  # type: ignore[arg-type]
        )
        for role in (
            Role.COORDINATOR, Role.PHYSICIAN, Role.PHYSICAL_THERAPIST, Role.PSYCHOLOGIST,
            Role.PHARMACIST,
        ):  # fmt: skip
            care_team_add(patient=patient, staff=staff[role], is_primary=role is Role.COORDINATOR)
        result.created.append(f"patient {patient.mrn}")

    # One patient with their own login, for the patient portal.
    portal_patient = Patient.objects.filter(clinic=clinic, mrn=DEMO_PORTAL_MRN).first()
    if portal_patient is not None:
        if (
            portal_patient.user_id is None
            and not User.objects.filter(username=DEMO_PORTAL_USERNAME).exists()
        ):
            patient_account_create(
                patient=portal_patient, username=DEMO_PORTAL_USERNAME, password=DEMO_PASSWORD
            )
            result.created.append(f"patient login {DEMO_PORTAL_USERNAME}")
        result.logins.append(
            (DEMO_PORTAL_USERNAME, f"Patient ({portal_patient.given_name}, {DEMO_PORTAL_MRN})")
        )

    if histories:
        for patient in Patient.objects.filter(clinic=clinic).order_by("mrn"):
            if demo_history_build(patient=patient, staff=staff_by_role):
                result.created.append(f"history of {patient.mrn}")
    return result
