"""The demo clinic seeded by `make demo`: staff of every discipline and a set of patients.

Idempotent: every record is looked up by its natural key first, so running it again changes
nothing and creates nothing twice.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, time

from carehub.accounts.models import Role, User
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create, threshold_set
from carehub.demo.builder import demo_histories_build
from carehub.demo.sandbox import demo_sandbox_seed
from carehub.demo.seeding import demo_staff_ensure
from carehub.patients.models import Channel, Language, Patient
from carehub.patients.services import care_team_add, patient_account_create, patient_register

DEMO_CLINIC_SLUG = "riverside"
# The number patients are told to call (a fictional 555-01xx number).
DEMO_CLINIC_PHONE = "+16175550142"
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

# More patients at every stage of the pathway (their histories are in scripts.py): MRN, given
# and family name, time zone, year of birth, preferred channel.
MORE_PATIENTS: list[tuple[str, str, str, str, int, Channel]] = [
    ("RP-1009", "Olivia", "Hart", "America/New_York", 1985, Channel.SMS),
    ("RP-1010", "Noah", "Kowalski", "America/Chicago", 1970, Channel.EMAIL),
    ("RP-1011", "Amara", "Nwosu", "Europe/London", 1990, Channel.SMS),
    ("RP-1012", "Lucas", "Moreau", "Europe/Paris", 1966, Channel.EMAIL),
    ("RP-1013", "Sofia", "Rossi", "America/New_York", 1978, Channel.SMS),
    ("RP-1014", "Ethan", "Park", "America/Los_Angeles", 1983, Channel.IN_APP),
    ("RP-1015", "Fatima", "Haddad", "America/Detroit", 1961, Channel.SMS),
    ("RP-1016", "George", "Adeyemi", "Europe/London", 1957, Channel.EMAIL),
    ("RP-1017", "Hannah", "Schulz", "Europe/Berlin", 1973, Channel.EMAIL),
    ("RP-1018", "Isaac", "Levy", "America/New_York", 1969, Channel.SMS),
    ("RP-1019", "Julia", "Costa", "America/Sao_Paulo", 1987, Channel.SMS),
    ("RP-1020", "Kofi", "Mensah", "America/Chicago", 1976, Channel.SMS),
    ("RP-1021", "Laura", "Novak", "Europe/Prague", 1965, Channel.EMAIL),
    ("RP-1022", "Mateo", "Garcia", "America/Phoenix", 1980, Channel.SMS),
    ("RP-1023", "Nadia", "Petrova", "America/New_York", 1972, Channel.EMAIL),
    ("RP-1024", "Oscar", "Lindgren", "Europe/Stockholm", 1968, Channel.SMS),
    ("RP-1025", "Priya", "Nair", "Asia/Kolkata", 1984, Channel.EMAIL),
    ("RP-1026", "Quentin", "Blake", "America/Denver", 1959, Channel.SMS),
    ("RP-1027", "Rosa", "Jimenez", "America/Los_Angeles", 1971, Channel.SMS),
    ("RP-1028", "Stefan", "Weber", "Europe/Vienna", 1963, Channel.EMAIL),
    ("RP-1029", "Tara", "Quinn", "Europe/Dublin", 1977, Channel.SMS),
    ("RP-1030", "Yusuf", "Demir", "Europe/Istanbul", 1982, Channel.SMS),
]
# This patient's number is "not in service" for the demo's SMS gateway (dead messages).
NOT_IN_SERVICE_MRN = "RP-1009"
NOT_IN_SERVICE_PHONE = "+15555550199"


# Patients whose pages and messages are in Spanish (`Patient.language`).
SPANISH_SPEAKING_MRNS = frozenset({"RP-1022", "RP-1027"})


def demo_patients() -> list[dict[str, object]]:
    more = [
        {
            "mrn": mrn,
            "given_name": given,
            "family_name": family,
            "time_zone": zone,
            "date_of_birth": date(year, 1 + n % 12, 1 + (n * 7) % 28),
            "preferred_channel": channel,
        }
        for n, (mrn, given, family, zone, year, channel) in enumerate(MORE_PATIENTS)
    ]
    return [{**spec, "language": _language(str(spec["mrn"]))} for spec in [*DEMO_PATIENTS, *more]]


def _language(mrn: str) -> Language:
    return Language.SPANISH if mrn in SPANISH_SPEAKING_MRNS else Language.ENGLISH


@dataclass
class SeedResult:
    clinic: Clinic | None
    created: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


def demo_seed(
    *, histories: bool = True, only: Collection[str] | None = None, sandbox: bool = True
) -> SeedResult:
    """Each record is written by its own service transaction; histories are built per patient
    (`only`: just these MRNs' histories, for tests that need a few); `sandbox`: the training
    sandbox clinic too."""
    result = SeedResult(clinic=Clinic.objects.filter(slug=DEMO_CLINIC_SLUG).first())
    if result.clinic is None:
        result.clinic = clinic_create(
            name="Riverside Pain Clinic",
            slug=DEMO_CLINIC_SLUG,
            time_zone="America/New_York",
            phone=DEMO_CLINIC_PHONE,
        )
        result.created.append(f"clinic {DEMO_CLINIC_SLUG}")
        # The clinic's pump refill interval: intractable-pain v2 times the refill reminders by
        # it (v1, which the demo's patients start on, cannot), so the migration's dry run shows
        # what v2 changes for the pump patient (README, "Changing a pathway").
        threshold_set(
            clinic=result.clinic,
            pathway_key="intractable-pain",
            name="pump_refill_interval_days",
            value=42,
            source="Riverside pump protocol: 40 mL reservoirs at the usual flow rates",
        )
    elif not result.clinic.phone:  # seeded before clinics had a phone number
        Clinic.objects.filter(pk=result.clinic.pk).update(phone=DEMO_CLINIC_PHONE)
        result.clinic.phone = DEMO_CLINIC_PHONE
    clinic = result.clinic

    staff, staff_created = demo_staff_ensure(
        clinic=clinic,
        people=DEMO_STAFF,
        password=DEMO_PASSWORD,
        email_domain="riverside.example",
        admin_is_superuser=True,
    )
    result.created.extend(staff_created)
    result.logins.extend((username, role.label) for username, role, _first, _last in DEMO_STAFF)
    staff_by_role = {role.value: user for role, user in staff.items()}

    for spec in demo_patients():
        if Patient.objects.filter(clinic=clinic, mrn=spec["mrn"]).exists():
            continue
        slug = str(spec["given_name"]).lower()
        phone = NOT_IN_SERVICE_PHONE if spec["mrn"] == NOT_IN_SERVICE_MRN else "+15555550100"
        patient = patient_register(
            clinic=clinic,
            email=f"{slug}@patients.example",
            phone=phone,
            **spec,  # type: ignore[arg-type]
        )
        for role in (
            Role.COORDINATOR,
            Role.PHYSICIAN,
            Role.PHYSICAL_THERAPIST,
            Role.PSYCHOLOGIST,
            Role.PHARMACIST,
        ):
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

    # The sandbox clinic for trainers: patients at intake on a test clock (ADR 0024).
    if sandbox:
        created, logins = demo_sandbox_seed(password=DEMO_PASSWORD)
        result.created += created
        result.logins += logins

    if histories:
        patients = list(Patient.objects.filter(clinic=clinic).order_by("mrn"))
        if only is not None:
            patients = [p for p in patients if p.mrn in only]
        for mrn in demo_histories_build(patients=patients, staff=staff_by_role):
            result.created.append(f"history of {mrn}")
    return result
