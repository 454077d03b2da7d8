"""The OpenAPI 3 document is valid and documents every operation with its problem responses."""

from __future__ import annotations

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from carehub.api.pathways import EnrolmentTimelineApi
from carehub.api.patients import AuditedApi

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/auth/token", "post"): "auth_token_obtain",
    ("/api/v1/auth/token", "delete"): "auth_token_revoke",
    ("/api/v1/pathways", "get"): "pathways_list",
    ("/api/v1/pathways/{key}/{version}", "get"): "pathways_retrieve",
    ("/api/v1/pathways/{key}/{version}/diagram", "get"): "pathways_diagram",
    ("/api/v1/patients", "get"): "patients_list",
    ("/api/v1/patients/{patient_id}", "get"): "patients_retrieve",
    ("/api/v1/patients/{patient_id}/enrolments", "get"): "patients_enrolments_list",
    ("/api/v1/enrolments/{public_id}", "get"): "enrolments_retrieve",
    ("/api/v1/enrolments/{public_id}/timeline", "get"): "enrolments_timeline",
    ("/api/v1/enrolments/{public_id}/events", "post"): "enrolments_events_send",
    ("/api/v1/proposals", "get"): "proposals_list",
    ("/api/v1/proposals/{proposal_id}/approve", "post"): "proposals_approve",
    ("/api/v1/proposals/{proposal_id}/reject", "post"): "proposals_reject",
    ("/api/v1/tasks", "get"): "tasks_list",
    ("/api/v1/tasks/{task_id}/complete", "post"): "tasks_complete",
    ("/api/v1/flags", "get"): "flags_list",
    ("/api/v1/flags/{flag_id}/acknowledge", "post"): "flags_acknowledge",
    ("/api/v1/flags/{flag_id}/resolve", "post"): "flags_resolve",
    ("/api/v1/patients/{patient_id}/enrolments", "post"): "patients_enrolments_start",
    ("/api/v1/enrolments/{public_id}/pause", "post"): "enrolments_pause",
    ("/api/v1/enrolments/{public_id}/resume", "post"): "enrolments_resume",
    ("/api/v1/enrolments/{public_id}/discharge", "post"): "enrolments_discharge",
    ("/api/v1/enrolments/{public_id}/migration/rollback", "post"): "enrolments_migration_rollback",
    ("/api/v1/pathways/{key}/migrations/{from_version}/{to_version}", "get"): (
        "pathways_migrations_dry_run"
    ),
    ("/api/v1/pathways/{key}/migrations/{from_version}/{to_version}/apply", "post"): (
        "pathways_migrations_apply"
    ),
    ("/api/v1/patients/{patient_id}/checkins", "get"): "patients_checkins_list",
    ("/api/v1/checkins/{checkin_id}", "get"): "checkins_retrieve",
    ("/api/v1/checkins/{checkin_id}/answers", "post"): "checkins_answers_submit",
    ("/api/v1/instruments", "get"): "instruments_list",
    ("/api/v1/instruments/{key}/{version}", "get"): "instruments_retrieve",
    ("/api/v1/patients/{patient_id}/observations", "get"): "patients_observations_list",
    ("/api/v1/patients/{patient_id}/procedures", "post"): "patients_procedures_record",
    ("/api/v1/patients/{patient_id}/sessions", "post"): "patients_sessions_record",
    ("/api/v1/patients/{patient_id}/scores", "post"): "patients_scores_record",
    ("/api/v1/observations/{observation_id}/result", "post"): "observations_result_record",
    ("/api/v1/patients/{patient_id}/messages", "get"): "patients_messages_list",
    ("/api/v1/messages/dead", "get"): "messages_dead_list",
    ("/api/v1/messages/{message_id}/resend", "post"): "messages_resend",
    ("/api/v1/events", "get"): "events_list",
    ("/api/v1/webhooks", "get"): "webhooks_list",
    ("/api/v1/webhooks", "post"): "webhooks_create",
    ("/api/v1/webhooks/{webhook_id}", "get"): "webhooks_retrieve",
    ("/api/v1/webhooks/{webhook_id}", "patch"): "webhooks_update",
    ("/api/v1/webhooks/{webhook_id}/deliveries", "get"): "webhooks_deliveries_list",
    ("/api/v1/webhook-deliveries/{delivery_id}/resend", "post"): "webhooks_deliveries_resend",
    ("/api/v1/thresholds", "get"): "thresholds_list",
    ("/api/v1/clinic/test-clock", "get"): "test_clock_get",
    ("/api/v1/clinic/test-clock/advance", "post"): "test_clock_advance",
    ("/api/v1/thresholds/{pathway_key}/{name}", "put"): "thresholds_set",
    ("/api/v1/patients", "post"): "patients_create",
    ("/api/v1/patients/{patient_id}", "patch"): "patients_update",
    ("/api/v1/patients/{patient_id}/deactivate", "post"): "patients_deactivate",
    ("/api/v1/patients/{patient_id}/care-team", "put"): "patients_care_team_set",
    ("/api/v1/patients/{patient_id}/pain-onset", "post"): "patients_pain_onset_record",
    (
        "/api/v1/patients/{patient_id}/conservative-care-start",
        "post",
    ): "patients_conservative_care_start_record",
    ("/api/v1/patients/{patient_id}/failed-treatments", "post"): (
        "patients_failed_treatments_record"
    ),
    ("/api/v1/patients/{patient_id}/psych-evaluations", "post"): (
        "patients_psych_evaluations_record"
    ),
    ("/api/v1/patients/{patient_id}/statuses", "post"): "patients_statuses_record",
    ("/api/v1/patients/{patient_id}/medications", "get"): "patients_medications_list",
    ("/api/v1/patients/{patient_id}/medications", "post"): "patients_medications_record",
    ("/api/v1/observations/{observation_id}/withdraw", "post"): "observations_withdraw",
    ("/api/v1/enrolments/{public_id}/facts", "get"): "enrolments_facts",
    ("/api/v1/enrolments/{public_id}/timers", "get"): "enrolments_timers",
    ("/api/v1/enrolments/{public_id}/next-due", "get"): "enrolments_next_due",
    ("/api/v1/patients/{patient_id}/tasks", "post"): "patients_tasks_create",
    ("/api/v1/tasks/{task_id}/assign", "post"): "tasks_assign",
    ("/api/v1/tasks/{task_id}/cancel", "post"): "tasks_cancel",
    ("/api/v1/checkins/{checkin_id}/open", "post"): "checkins_open",
    ("/api/v1/staff", "get"): "staff_list",
}


@pytest.fixture
def schema() -> dict:  # type: ignore[type-arg]
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3(schema: dict) -> None:  # type: ignore[type-arg]
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_every_operation_is_documented_with_problem_responses(schema: dict) -> None:  # type: ignore[type-arg]
    for (path, method), operation_id in OPERATIONS.items():
        operation = schema["paths"][path][method]
        assert operation["operationId"] == operation_id
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success, (path, method)
        errors = [code for code in responses if code[0] in "45"]
        assert "401" in errors or operation_id == "auth_token_obtain"
        for code in errors:
            assert "application/problem+json" in responses[code]["content"], (path, code)
    events = schema["paths"]["/api/v1/enrolments/{public_id}/events"]["post"]
    assert {"400", "404", "409", "422"} <= set(events["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" and p["required"]
               for p in events["parameters"])  # fmt: skip
    approve = schema["paths"]["/api/v1/proposals/{proposal_id}/approve"]["post"]
    assert {"403", "422"} <= set(approve["responses"])
    submit = schema["paths"]["/api/v1/checkins/{checkin_id}/answers"]["post"]
    assert {"201", "400", "410"} <= set(submit["responses"])
    token = schema["paths"]["/api/v1/auth/token"]["post"]
    assert "429" in token["responses"]


def test_every_operation_in_the_schema_is_listed_here(schema: dict) -> None:  # type: ignore[type-arg]
    documented = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert documented == set(OPERATIONS)


def test_swagger_ui_is_served_from_our_origin() -> None:
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"cdn" not in response.content.lower()


def test_an_operation_is_never_described_by_the_base_every_view_shares(schema: dict) -> None:  # type: ignore[type-arg]
    shared = AuditedApi.__doc__.split("\n")[0]  # type: ignore[union-attr]
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert not [op["operationId"] for op in operations if shared in op.get("description", "")]
    # A view's own docstring still describes it.
    timeline = schema["paths"]["/api/v1/enrolments/{public_id}/timeline"]["get"]
    assert timeline["description"] == EnrolmentTimelineApi.__doc__
