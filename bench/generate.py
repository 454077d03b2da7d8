"""Data for the benchmarks: a clinic at scale and schedule tables of a chosen size.

**This module writes rows directly** (PostgreSQL COPY, and INSERT … SELECT over
generate_series), not through carehub's services: building 10,000 patients with months of
history through the services would take longer than the benchmarks themselves. It writes what
the services would have written (the same tables, states and keys, a consistent enrolment
configuration taken from the engine), and it is used only by the bench, on the bench's own
database (`bench.env`); carehub never imports it.

- `generate_clinic(patients=10_000, months=6)`: one clinic with staff of every discipline and
  active patients, each enrolled on the built-in intractable-pain pathway with months of
  history: weekly PEG and four-weekly PHQ-9/GAD-7 check-ins (answered or missed, each answered
  one with its score observation), their request and reminder messages with delivery events,
  pathway steps (intake, physical therapy and CBT transitions), fired and pending timers, care
  teams. Reused when the database already holds a clinic of that size (`clinic_info`).
- `timer_table(alias, rows, due)` / `message_table(alias, rows, due)`: a schedule table of
  `rows` rows (80 % closed history, the rest pending), of which `due` are due now.
- `checkin_schedules(rows, due, due_at)`: P2's patient schedules, one check-in series with one
  scheduled occurrence per schedule.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connections, transaction

GENERATOR_VERSION = 1
CLINIC_SLUG = "bench"
BENCH_PASSWORD = "bench-only-password"  # noqa: S105 (a local benchmark database only)
DEFINITION_KEY = "intractable-pain"

ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "Europe/London", "Europe/Berlin", "Africa/Johannesburg", "Australia/Sydney",
]  # fmt: skip
GIVEN = ["Maria", "James", "Aiko", "Samuel", "Helen", "Daniel", "Grace", "Liam", "Noor", "Ivan"]
FAMILY = [
    "Lopez", "Whitfield", "Tanaka", "Osei", "Brandt", "Reyes", "Mbeki", "OConnor", "Haddad",
    "Petrov", "Nguyen", "Kowalski", "Silva", "Okafor", "Larsen", "Moreau", "Rossi", "Kim",
]  # fmt: skip
STAFF_ROLES = {
    "clinic_admin": 1, "coordinator": 10, "physician": 8, "physical_therapist": 20,
    "psychologist": 8, "pharmacist": 4,
}  # fmt: skip
SERIES = [("peg_weekly", "peg", 7), ("mood_phq9", "phq9", 28), ("mood_gad7", "gad7", 28)]


@dataclass(frozen=True)
class ClinicInfo:
    clinic_id: int
    patients: int
    months: int
    seconds: float
    rows: dict[str, int]


# --- low-level helpers ----------------------------------------------------------------------------


def _raw(alias: str = "default") -> Any:
    connection = connections[alias]
    connection.ensure_connection()
    return connection.connection


def copy_rows(
    table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], alias: str = "default"
) -> int:
    """COPY rows into `table` (values are adapted by psycopg); returns how many."""
    count = 0
    cols = ", ".join(columns)
    with _raw(alias).cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def reset_sequences(tables: Iterable[str], alias: str = "default") -> None:
    with connections[alias].cursor() as cursor:
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )


def clinic_info(alias: str = "default") -> ClinicInfo | None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_generated')")
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute("SELECT info FROM bench_generated WHERE version = %s", [GENERATOR_VERSION])
        row = cursor.fetchone()
    if row is None:
        return None
    data = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return ClinicInfo(**data)


CLINIC_TABLES = [
    "web_caseloadentry", "knox_authtoken", "audit_auditevent", "messaging_recordedmessage",
    "messaging_inappnotification",
    "messaging_deliveryevent", "messaging_message", "messaging_contactpreference",
    "checkins_checkinlink", "checkins_checkin", "checkins_checkinseries",
    "worklists_flag", "worklists_caretask", "pathways_processedevent", "pathways_outboxeffect",
    "pathways_proposal", "pathways_pathwaytimer", "pathways_pathwaystep", "pathways_enrolment",
    "observations_observation", "patients_careteammembership", "patients_patient",
    "accounts_user", "clinics_clinic",
]  # fmt: skip


def _truncate(tables: Sequence[str], alias: str = "default") -> None:
    with connections[alias].cursor() as cursor:
        existing = []
        for table in tables:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is not None:
                existing.append(table)
        cursor.execute(f"TRUNCATE {', '.join(existing)} RESTART IDENTITY CASCADE")


# --- the clinic -------------------------------------------------------------------------------


def _initial_configuration(at: datetime) -> dict[str, dict[str, str]]:
    from carehub.pathways.registry import definition_get

    definition = definition_get(DEFINITION_KEY)
    return {
        name: {"state": track.initial, "entered_at": at.isoformat()}
        for name, track in definition.tracks.items()
    }


def generate_clinic(
    *, patients: int = 10_000, months: int = 6, seed: int = 7, now: datetime | None = None
) -> ClinicInfo:
    """Replace the bench database's clinic data with a generated clinic (see the module doc)."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 (test data)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    _truncate(CLINIC_TABLES)
    rows: dict[str, int] = {}

    clinic_id = 1
    rows["clinics_clinic"] = copy_rows(
        "clinics_clinic", ["id", "created_at", "updated_at", "name", "slug", "time_zone", "phone"],
        [(clinic_id, now, now, "Bench Pain Clinic", CLINIC_SLUG, "America/New_York", "")],
    )  # fmt: skip

    password = make_password(BENCH_PASSWORD)
    staff: dict[str, list[int]] = {}
    staff_rows = []
    user_id = 0
    for role, count in STAFF_ROLES.items():
        for n in range(count):
            user_id += 1
            staff.setdefault(role, []).append(user_id)
            username = f"{role}{n + 1}"
            staff_rows.append((
                user_id, password, None, False, username, role.title(), f"{n + 1}",
                f"{username}@bench.example", role == "clinic_admin", True, now, role, clinic_id,
            ))  # fmt: skip
    rows["accounts_user"] = copy_rows(
        "accounts_user",
        ["id", "password", "last_login", "is_superuser", "username", "first_name", "last_name",
         "email", "is_staff", "is_active", "date_joined", "role", "clinic_id"],
        staff_rows,
    )  # fmt: skip

    # Patients, care teams, contact preferences.
    patient_rows, team_rows, pref_rows = [], [], []
    starts: list[datetime] = []
    team_id = 0
    for pid in range(1, patients + 1):
        zone = ZONES[pid % len(ZONES)]
        channel = rng.choices(["sms", "email", "in_app"], weights=[60, 25, 15])[0]
        window = (dtime(9), dtime(20)) if pid % 5 else (dtime(10), dtime(18))
        started_at = now - timedelta(days=months * 30) + timedelta(days=rng.randint(0, 20))
        starts.append(started_at)
        patient_rows.append((
            pid, started_at, started_at, f"BP-{pid:06}", GIVEN[pid % len(GIVEN)],
            f"{FAMILY[rng.randrange(len(FAMILY))]}{'' if pid % 3 else '-' + FAMILY[pid % 7]}",
            date(1950 + pid % 50, 1 + pid % 12, 1 + pid % 28), zone,
            f"patient{pid}@bench.example", f"+4477009{pid:05}", channel,
            "email" if channel != "email" else "in_app", window[0], window[1], clinic_id, "en",
        ))  # fmt: skip
        team = [
            ("coordinator", True),
            ("physician", False),
            ("physical_therapist", False),
        ] + ([("psychologist", False)] if pid % 2 else [])
        for role, primary in team:
            team_id += 1
            members = staff[role]
            team_rows.append((
                team_id, started_at, started_at, primary, started_at, None,
                members[pid % len(members)], pid,
            ))  # fmt: skip
        pref_rows.append((pid, started_at, started_at, False, False, False, False, 3, pid))
    rows["patients_patient"] = copy_rows(
        "patients_patient",
        ["id", "created_at", "updated_at", "mrn", "given_name", "family_name", "date_of_birth",
         "time_zone", "email", "phone", "preferred_channel", "fallback_channel",
         "send_window_start", "send_window_end", "clinic_id", "language"],
        patient_rows,
    )  # fmt: skip
    rows["patients_careteammembership"] = copy_rows(
        "patients_careteammembership",
        ["id", "created_at", "updated_at", "is_primary", "started_at", "ended_at", "staff_id",
         "patient_id"],
        team_rows,
    )  # fmt: skip
    rows["messaging_contactpreference"] = copy_rows(
        "messaging_contactpreference",
        ["id", "created_at", "updated_at", "opted_out", "opted_out_sms", "opted_out_email",
         "opted_out_in_app", "daily_budget", "patient_id"],
        pref_rows,
    )  # fmt: skip

    # Enrolments with their steps, processed events and timers.
    enrol_rows, step_rows, processed_rows, timer_rows = [], [], [], []
    step_id = timer_id = 0
    for pid, started_at in enumerate(starts, start=1):
        config = _initial_configuration(started_at)
        history: list[tuple[str, datetime, dict[str, str]]] = [("start", started_at, {})]
        intake = started_at + timedelta(days=7)
        config["ladder"] = {"state": "conventional", "entered_at": intake.isoformat()}
        history.append(("intake_completed", intake, {"ladder": "intake → conventional"}))
        pt_at = intake + timedelta(days=14)
        config["physical_therapy"] = {"state": "active", "entered_at": pt_at.isoformat()}
        history.append(("pt_started", pt_at, {"physical_therapy": "referred → active"}))
        if pid % 2:
            cbt_at = intake + timedelta(days=21)
            config["cbt"] = {"state": "initial_phase", "entered_at": cbt_at.isoformat()}
            history.append(("cbt_started", cbt_at, {"cbt": "referred → initial_phase"}))
            for n in range(rng.randint(1, 4)):
                at = cbt_at + timedelta(days=7 * (n + 1))
                history.append(("cbt_session_logged", at, {"cbt": "initial_phase"}))
        version = len(history)
        enrol_rows.append((
            pid, started_at, history[-1][1], uuid.UUID(int=rng.getrandbits(128)), DEFINITION_KEY,
            1, "active", json.dumps(config), version, started_at, None, "", None, clinic_id, pid,
            staff["coordinator"][pid % len(staff["coordinator"])],
        ))  # fmt: skip
        for sequence, (event, at, moved) in enumerate(history, start=1):
            step_id += 1
            outcome = "started" if event == "start" else "transitioned"
            key = f"bench:{pid}:{sequence}"
            step_rows.append((
                step_id, sequence, event, key, outcome, "coordinator" if sequence > 1 else "",
                json.dumps([{"track": t, "move": m} for t, m in moved.items()]),
                json.dumps({"summary": f"{event}: {outcome}", "checks": [], "notes": []}),
                json.dumps(config), json.dumps([]), at, None, pid,
            ))  # fmt: skip
            if sequence > 1:
                processed_rows.append((step_id, key, event, outcome, at, pid, step_id))
        timer_specs = [
            ("ladder.conventional_review", "ladder", "conventional", "conventional_review_due",
             intake + timedelta(weeks=12)),
            ("physical_therapy.pt_midpoint", "physical_therapy", "active", "pt_midpoint_due",
             pt_at + timedelta(weeks=6)),
            ("physical_therapy.pt_programme_end", "physical_therapy", "active",
             "pt_programme_end_due", pt_at + timedelta(weeks=12)),
        ]  # fmt: skip
        for key, track, state, event, due in timer_specs:
            timer_id += 1
            fired = due <= now
            timer_rows.append((
                timer_id, started_at, started_at, key, track, state, event,
                due, "fired" if fired else "pending",
                due if fired else None, pid,
            ))  # fmt: skip
    rows["pathways_enrolment"] = copy_rows(
        "pathways_enrolment",
        ["id", "created_at", "updated_at", "public_id", "definition_key", "definition_version",
         "status", "configuration", "version", "started_at", "paused_at", "pause_reason",
         "completed_at", "clinic_id", "patient_id", "started_by_id"],
        enrol_rows,
    )  # fmt: skip
    rows["pathways_pathwaystep"] = copy_rows(
        "pathways_pathwaystep",
        ["id", "sequence", "event", "event_key", "outcome", "actor_role", "transitions",
         "explanation", "configuration", "effects", "at", "actor_id", "enrolment_id"],
        step_rows,
    )  # fmt: skip
    rows["pathways_processedevent"] = copy_rows(
        "pathways_processedevent",
        ["id", "idempotency_key", "event", "outcome", "processed_at", "enrolment_id", "step_id"],
        processed_rows,
    )  # fmt: skip
    rows["pathways_pathwaytimer"] = copy_rows(
        "pathways_pathwaytimer",
        ["id", "created_at", "updated_at", "key", "track", "state", "event", "due_at", "status",
         "closed_at", "enrolment_id"],
        timer_rows,
    )  # fmt: skip

    rows.update(_checkin_history(rng, starts, now, clinic_id))
    _finish(rows)
    rows["last_message_id"] = rows["messaging_message"]
    info = ClinicInfo(
        clinic_id=clinic_id, patients=patients, months=months,
        seconds=round(time.perf_counter() - started, 1), rows=rows,
    )  # fmt: skip
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_generated (version integer PRIMARY KEY, info jsonb)"
        )
        cursor.execute("DELETE FROM bench_generated")
        cursor.execute(
            "INSERT INTO bench_generated VALUES (%s, %s)",
            [GENERATOR_VERSION, json.dumps(info.__dict__)],
        )
    return info


def _checkin_history(
    rng: random.Random, starts: list[datetime], now: datetime, clinic_id: int
) -> dict[str, int]:
    """Check-in series with months of occurrences, score observations and messages."""
    series_rows, checkin_rows, obs_rows, message_rows, event_rows = [], [], [], [], []
    series_id = checkin_id = obs_id = message_id = event_id = 0
    for pid, started_at in enumerate(starts, start=1):
        first = started_at + timedelta(days=7)
        for name, instrument, every_days in SERIES:
            series_id += 1
            every = timedelta(days=every_days)
            series_rows.append((
                series_id, first, first, name, instrument, every, first, None, pid, pid,
            ))  # fmt: skip
            sequence = 0
            due = first + every
            while True:
                sequence += 1
                checkin_id += 1
                closes = due + min(every, timedelta(hours=72))
                if due > now:  # the next one: scheduled
                    checkin_rows.append((
                        checkin_id, first, first, instrument, 1, sequence, due, closes,
                        "scheduled", "", None, None, "{}", None, "", "[]", pid, None, pid,
                        series_id,
                    ))  # fmt: skip
                    break
                answered = closes <= now and rng.random() < 0.8
                opened = due
                answered_at = due + timedelta(hours=rng.randint(1, 60)) if answered else None
                observation = None
                score = None
                if answered:
                    obs_id += 1
                    observation = obs_id
                    score = (
                        round(rng.uniform(3, 8), 1) if instrument == "peg" else rng.randint(2, 18)
                    )
                    obs_rows.append((
                        obs_id, answered_at, answered_at, "score", instrument, score, "", None,
                        "{}", answered_at, "patient", sequence == 1, False, None, pid, None,
                    ))  # fmt: skip
                status = "answered" if answered else ("missed" if closes <= now else "open")
                checkin_rows.append((
                    checkin_id, first, answered_at or closes, instrument, 1, sequence, due, closes,
                    status, "", opened, answered_at, "{}", score, "", "[]", pid, observation, pid,
                    series_id,
                ))  # fmt: skip
                # The request, and the reminders the patient got before answering.
                reminders = (
                    0 if answered and answered_at and answered_at < due + timedelta(hours=24) else 2
                )
                for kind, number in [("request", 0)] + [
                    ("reminder", r) for r in range(1, reminders + 1)
                ]:
                    message_id += 1
                    at = due + timedelta(hours=24 * number)
                    key = (
                        f"checkin:{checkin_id}:request" if kind == "request"
                        else f"checkin:{checkin_id}:reminder:{number}"
                    )  # fmt: skip
                    message_rows.append((
                        message_id, at, at, f"checkin_{kind}", "routine",
                        "Your check-in is ready. {link}", f"checkin:{checkin_id}", key,
                        f"{instrument} check-in #{sequence}", "sms", "sent", 1, at, None, at,
                        f"rec-{message_id}", "", clinic_id, None, pid, None, None,
                    ))  # fmt: skip
                    for status_, reason in (("queued", "Created and queued"), ("sent", "Sent")):
                        event_id += 1
                        event_rows.append((event_id, at, status_, reason, 1, message_id, None))
                due = due + every
    rows = {}
    rows["checkins_checkinseries"] = copy_rows(
        "checkins_checkinseries",
        ["id", "created_at", "updated_at", "series", "instrument", "every", "started_at",
         "stopped_at", "enrolment_id", "patient_id"],
        series_rows,
    )  # fmt: skip
    rows["observations_observation"] = copy_rows(
        "observations_observation",
        ["id", "created_at", "updated_at", "kind", "code", "value_number", "value_text",
         "value_bool", "data", "observed_at", "source", "is_baseline", "entered_in_error",
         "corrects_id", "patient_id", "recorded_by_id"],
        obs_rows,
    )  # fmt: skip
    rows["checkins_checkin"] = copy_rows(
        "checkins_checkin",
        ["id", "created_at", "updated_at", "instrument", "instrument_version", "sequence",
         "due_at", "closes_at", "status", "status_before_pause", "opened_at", "answered_at",
         "answers", "score", "band", "red_flags", "enrolment_id", "observation_id",
         "patient_id", "series_id"],
        checkin_rows,
    )  # fmt: skip
    rows["messaging_message"] = copy_rows(
        "messaging_message",
        ["id", "created_at", "updated_at", "purpose", "urgency", "body", "subject_key",
         "idempotency_key", "why", "channel", "status", "attempts", "not_before", "claimed_at",
         "sent_at", "provider_message_id", "last_error", "clinic_id", "digest_id",
         "patient_id", "source_effect_id", "to_staff_id"],
        message_rows,
    )  # fmt: skip
    rows["messaging_deliveryevent"] = copy_rows(
        "messaging_deliveryevent",
        ["id", "at", "status", "reason", "attempt", "message_id", "related_message_id"],
        event_rows,
    )  # fmt: skip
    return rows


def _finish(rows: dict[str, int]) -> None:
    reset_sequences(rows)
    with connections["default"].cursor() as cursor:
        # The caseload entries follow the loads through their triggers; rebuilt once more from
        # their definition so a load that skipped triggers cannot leave them behind.
        cursor.execute("SELECT to_regproc('web_caseload_rebuild')")
        if cursor.fetchone()[0] is not None:
            cursor.execute("SELECT web_caseload_rebuild()")
            cursor.execute("ANALYZE web_caseloadentry")
        for table in rows:
            cursor.execute(f"ANALYZE {table}")


# --- schedule tables --------------------------------------------------------------------------


def _anchor(alias: str) -> int:
    """A clinic, patient and enrolment for rows that need them (P3's own databases)."""
    from carehub.pathways.models import Enrolment

    existing = Enrolment.objects.using(alias).values_list("pk", flat=True).first()
    if existing is not None:
        return int(existing)
    now = datetime.now(UTC)
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "INSERT INTO clinics_clinic (created_at, updated_at, name, slug, time_zone, phone) "
            "VALUES (%s, %s, 'Bench', 'bench', 'UTC', '') RETURNING id",
            [now, now],
        )
        clinic_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO patients_patient (created_at, updated_at, mrn, given_name, family_name,"
            " time_zone, email, phone, preferred_channel, fallback_channel, send_window_start,"
            " send_window_end, clinic_id, language) VALUES (%s, %s, 'B-1', 'B', 'B', 'UTC', '',"
            " '', 'sms', '', '00:00', '23:59', %s, 'en') RETURNING id",
            [now, now, clinic_id],
        )
        patient_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO pathways_enrolment (created_at, updated_at, public_id, definition_key,"
            " definition_version, status, configuration, version, started_at, pause_reason,"
            " clinic_id, patient_id) VALUES (%s, %s, %s, 'bench', 1, 'active', '{}', 1, %s, '',"
            " %s, %s) RETURNING id",
            [now, now, uuid.uuid4(), now, clinic_id, patient_id],
        )
        return int(cursor.fetchone()[0])


def timer_table(alias: str, rows: int, due: int, *, now: datetime) -> None:
    """`rows` pathway timers: 80 % fired history, the rest pending in the future, `due` of the
    pending ones due by `now` (spread over the last hour)."""
    enrolment_id = _anchor(alias)
    pending = max(rows // 5, due)
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("TRUNCATE pathways_pathwaytimer RESTART IDENTITY")
        cursor.execute(
            """
            INSERT INTO pathways_pathwaytimer
              (created_at, updated_at, key, track, state, event, due_at, status, closed_at,
               enrolment_id)
            SELECT %(now)s, %(now)s, 'bench.t' || n, 'ladder', 'conventional',
                   'conventional_review_due',
                   CASE WHEN n <= %(closed)s THEN %(now)s - (n %% 400) * interval '1 day'
                        WHEN n <= %(closed)s + %(due)s
                          THEN %(now)s - ((n - %(closed)s) %% 3600) * interval '1 second'
                        ELSE %(now)s + (1 + n %% 100000) * interval '1 minute' END,
                   CASE WHEN n <= %(closed)s THEN 'fired' ELSE 'pending' END,
                   CASE WHEN n <= %(closed)s THEN %(now)s END,
                   %(enrolment)s
            FROM generate_series(1, %(rows)s) AS n
            """,
            {"now": now, "rows": rows, "closed": rows - pending, "due": due,
             "enrolment": enrolment_id},
        )  # fmt: skip
        cursor.execute("ANALYZE pathways_pathwaytimer")


def message_table(alias: str, rows: int, due: int, *, now: datetime) -> None:
    """`rows` messages: 80 % sent history, the rest pending in the future, `due` due by `now`."""
    enrolment_id = _anchor(alias)
    pending = max(rows // 5, due)
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT clinic_id, patient_id FROM pathways_enrolment WHERE id = %s",
                       [enrolment_id])  # fmt: skip
        clinic_id, patient_id = cursor.fetchone()
        cursor.execute("TRUNCATE messaging_message RESTART IDENTITY CASCADE")
        cursor.execute(
            """
            INSERT INTO messaging_message
              (created_at, updated_at, purpose, urgency, body, subject_key, idempotency_key, why,
               channel, status, attempts, not_before, claimed_at, sent_at, provider_message_id,
               last_error, clinic_id, patient_id)
            SELECT %(now)s, %(now)s, 'checkin_request', 'routine', 'Your check-in is ready.',
                   'checkin:' || n, 'bench:' || n, 'bench', 'sms',
                   CASE WHEN n <= %(closed)s THEN 'sent' ELSE 'pending' END, 0,
                   CASE WHEN n <= %(closed)s THEN %(now)s - (n %% 400) * interval '1 day'
                        WHEN n <= %(closed)s + %(due)s
                          THEN %(now)s - ((n - %(closed)s) %% 3600) * interval '1 second'
                        ELSE %(now)s + (1 + n %% 100000) * interval '1 minute' END,
                   NULL, CASE WHEN n <= %(closed)s THEN %(now)s END, '', '',
                   %(clinic)s, %(patient)s
            FROM generate_series(1, %(rows)s) AS n
            """,
            {"now": now, "rows": rows, "closed": rows - pending, "due": due,
             "clinic": clinic_id, "patient": patient_id},
        )  # fmt: skip
        cursor.execute("ANALYZE messaging_message")


def checkin_schedules(rows: int, due: int, *, due_at: datetime, prefix: str = "p2") -> list[int]:
    """P2's patient schedules in the clinic: `rows` check-in series (spread over the clinic's
    enrolments), each with one scheduled occurrence; `due` of them due at `due_at`, the others
    over the coming week. Earlier schedules of the same prefix are removed. Returns the ids of
    the due check-ins."""
    purge_bench_deliveries()
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute(
            "DELETE FROM checkins_checkin WHERE series_id IN (SELECT id FROM"
            " checkins_checkinseries WHERE series LIKE %s)",
            [f"{prefix}-%"],
        )
        cursor.execute("DELETE FROM checkins_checkinseries WHERE series LIKE %s", [f"{prefix}-%"])
        cursor.execute(
            """
            WITH e AS (SELECT id, patient_id, row_number() OVER (ORDER BY id) AS k,
                              count(*) OVER () AS total FROM pathways_enrolment)
            INSERT INTO checkins_checkinseries
              (created_at, updated_at, series, instrument, every, started_at, enrolment_id,
               patient_id)
            SELECT %(at)s, %(at)s, %(prefix)s || '-' || n, 'peg', interval '7 days', %(at)s,
                   e.id, e.patient_id
            FROM generate_series(1, %(rows)s) AS n JOIN e ON e.k = 1 + (n - 1) %% e.total
            """,
            {"at": due_at - timedelta(days=7), "prefix": prefix, "rows": rows},
        )
        cursor.execute(
            """
            INSERT INTO checkins_checkin
              (created_at, updated_at, instrument, instrument_version, sequence, due_at,
               closes_at, status, status_before_pause, answers, band, red_flags, enrolment_id,
               patient_id, series_id)
            SELECT %(at)s, %(at)s, 'peg', 1, 1, d.due, d.due + interval '72 hours', 'scheduled',
                   '', '{}', '', '[]', s.enrolment_id, s.patient_id, s.id
            FROM (SELECT s.*, row_number() OVER (ORDER BY s.id) AS k
                  FROM checkins_checkinseries s WHERE s.series LIKE %(like)s) AS s
            CROSS JOIN LATERAL (SELECT CASE WHEN s.k <= %(due)s THEN %(due_at)s
                 ELSE %(due_at)s + (1 + s.k %% 10080) * interval '1 minute' END AS due) AS d
            """,
            {"at": due_at - timedelta(days=7), "like": f"{prefix}-%", "due": due,
             "due_at": due_at},
        )  # fmt: skip
        cursor.execute(
            "SELECT c.id FROM checkins_checkin c JOIN checkins_checkinseries s ON s.id ="
            " c.series_id WHERE s.series LIKE %s AND c.due_at <= %s ORDER BY c.id",
            [f"{prefix}-%", due_at],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("ANALYZE checkins_checkin")
        cursor.execute("ANALYZE checkins_checkinseries")
    return ids


def purge_bench_deliveries() -> None:
    """Remove what earlier bench runs created on top of the generated clinic: messages (with
    their delivery events), check-in links, in-app notifications, recorded deliveries and outbox
    rows. Delivery events are append-only (a trigger refuses DELETE), so this runs with
    `session_replication_role = replica`, which skips triggers: bench databases only."""
    info = clinic_info()
    last_message = info.rows.get("last_message_id", 0) if info else 0
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM messaging_deliveryevent WHERE message_id > %s", [last_message])
        cursor.execute(
            "DELETE FROM messaging_inappnotification WHERE message_id > %s", [last_message]
        )
        cursor.execute("DELETE FROM messaging_message WHERE id > %s", [last_message])
        cursor.execute("DELETE FROM messaging_recordedmessage")
        cursor.execute("DELETE FROM checkins_checkinlink")


def push_clinic_schedule(*, margin: timedelta = timedelta(days=1)) -> int:
    """Keep the generated clinic's own scheduled check-ins out of a burst: those falling due
    within `margin` (the clinic was generated some time ago) move on by whole weeks."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "UPDATE checkins_checkin c SET due_at = c.due_at + interval '7 days' *"
            " ceil(extract(epoch FROM (now() + %s - c.due_at)) / 604800.0),"
            " closes_at = c.closes_at + interval '7 days' *"
            " ceil(extract(epoch FROM (now() + %s - c.due_at)) / 604800.0)"
            " FROM checkins_checkinseries s WHERE s.id = c.series_id AND c.status = 'scheduled'"
            " AND c.due_at <= now() + %s AND s.series NOT LIKE 'p%%-%%'",
            [margin, margin, margin],
        )
        return int(cursor.rowcount)
