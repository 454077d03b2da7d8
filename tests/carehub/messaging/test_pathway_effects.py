"""Pathway effects that notify people go through the messaging API: one message per recipient,
keyed by the outbox row, so an effect executed twice sends nothing twice."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.messaging.models import Message
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import EffectStatus, OutboxEffect
from carehub.pathways.services import enrolment_start
from carehub.patients.models import Patient

pytestmark = pytest.mark.django_db


def test_notify_and_proposal_effects_enqueue_one_message_per_recipient(
    patient: Patient, staff: dict[str, User]
) -> None:
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    notify = OutboxEffect.objects.create(
        enrolment=enrolment, kind="notify", idempotency_key="n1", available_at=timezone.now(),
        payload={"kind": "notify", "track": "ladder", "to": ["patient", "physician"],
                 "message": "Your plan has moved on.", "urgency": "urgent"},
    )  # fmt: skip
    proposal = OutboxEffect.objects.create(
        enrolment=enrolment, kind="propose_escalation", idempotency_key="p1",
        available_at=timezone.now(),
        payload={"kind": "propose_escalation", "track": "ladder", "proposal_id": "abc",
                 "source": "conventional", "target": "mbb1", "roles": ["physician"],
                 "summary": "Medial branch block"},
    )  # fmt: skip
    for pk in (notify.pk, notify.pk, proposal.pk):
        effect_execute(effect_id=pk)
    notify.refresh_from_db()
    assert notify.status == EffectStatus.DONE
    messages = Message.objects.filter(source_effect__in=[notify, proposal])
    assert sorted(messages.values_list("idempotency_key", "purpose", "urgency")) == [
        ("n1:patient", "pathway_notice", "urgent"),
        (f"n1:staff:{staff['physician'].pk}", "pathway_notice", "urgent"),
        (f"p1:staff:{staff['physician'].pk}", "escalation_proposed", "routine"),
    ]
    escalation = messages.get(purpose="escalation_proposed")
    assert escalation.subject_key == "proposal:abc"
    assert escalation.body == "Escalation waiting for your decision: Medial branch block"
    assert "needs one of: physician" in escalation.why
