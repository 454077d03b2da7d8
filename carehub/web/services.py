"""Writes of the web UI: claiming a form submission so that it acts once, and the session log
(a session and its measure in one transaction)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.observations.models import Observation, Source
from carehub.observations.scores import score_observation_record
from carehub.observations.services import session_record
from carehub.patients.models import Patient
from carehub.web.models import FormSubmission, SubmissionStatus

# How long a form key is remembered (a double submit comes seconds apart).
SUBMISSION_KEPT = timedelta(days=1)


def submission_claim(*, key: str, user: User, action: str) -> FormSubmission | None:
    """Claim the submission; None when this key was claimed before (the form was sent twice)."""
    try:
        with transaction.atomic(durable=True):
            return FormSubmission.objects.create(
                key=key, user=user, action=action, created_at=clock.now()
            )
    except IntegrityError:
        return None


def submission_previous(*, key: str) -> FormSubmission | None:
    return FormSubmission.objects.filter(key=key).first()


@transaction.atomic(durable=True)
def submission_finish(*, submission: FormSubmission, result: str) -> None:
    submission.status = SubmissionStatus.DONE
    submission.result = result[:300]
    submission.save(update_fields=["status", "result"])


@transaction.atomic(durable=True)
def submission_release(*, submission: FormSubmission) -> None:
    """The action refused the input and changed nothing: the same form may be sent again."""
    FormSubmission.objects.filter(pk=submission.pk, status=SubmissionStatus.RUNNING).delete()


@transaction.atomic
def session_log(
    *,
    patient: Patient,
    discipline: str,
    attended: bool,
    observed_at: datetime,
    notes: str,
    measure: str | None,
    score: float | None,
    user: User,
) -> list[Observation]:
    """A therapy session and, optionally, a measure taken at it, together or not at all (a
    score the instrument refuses leaves no session behind). The measure is scored and recorded
    like any score (`score_observation_record`: range, band, red flags, the baseline rule)."""
    recorded = [
        session_record(
            patient=patient, discipline=discipline, attended=attended, observed_at=observed_at,
            notes=notes, recorded_by=user,
        )
    ]  # fmt: skip
    if measure and score is not None:
        scored = score_observation_record(
            patient=patient, instrument=measure, score=score, observed_at=observed_at,
            recorded_by=user, source=Source.STAFF,
        )  # fmt: skip
        assert scored.observation is not None  # outside a check-in: recorded or refused
        recorded.append(scored.observation)
    return recorded


def submissions_prune(*, older_than: timedelta = SUBMISSION_KEPT) -> int:
    """Forget form keys older than a day: a form that old is re-rendered with a new key anyway
    (the rows hold no patient data)."""
    deleted, _ = FormSubmission.objects.filter(created_at__lt=clock.now() - older_than).delete()
    return deleted
