"""What messaging does for pathway effects: `notify` and `propose_escalation` enqueue messages to
the roles they name. Registered by kind with the outbox (carehub.pathways.effects) from
MessagingConfig.ready()."""

from __future__ import annotations

from datetime import datetime

from carehub.messaging.services import message_enqueue_for_roles
from carehub.pathways.effects import register_effect_handler
from carehub.pathways.models import OutboxEffect


def _notify(effect: OutboxEffect, now: datetime) -> None:
    p = effect.payload
    message_enqueue_for_roles(
        patient=effect.enrolment.patient,
        roles=list(p["to"]),
        purpose="pathway_notice",
        body=p["message"],
        idempotency_key_prefix=effect.idempotency_key,
        urgency=p.get("urgency", "routine"),
        why=f"Pathway {effect.enrolment.definition_key}, track {p['track']}",
        subject_key=f"enrolment:{effect.enrolment_id}",
        source_effect=effect,
    )


def _propose_escalation(effect: OutboxEffect, now: datetime) -> None:
    p = effect.payload
    message_enqueue_for_roles(
        patient=effect.enrolment.patient,
        roles=list(p["roles"]),
        purpose="escalation_proposed",
        body=f"Escalation waiting for your decision: {p['summary']}",
        idempotency_key_prefix=effect.idempotency_key,
        urgency="routine",
        why=f"Proposal {p['source']} → {p['target']} needs one of: {', '.join(p['roles'])}",
        subject_key=f"proposal:{p['proposal_id']}" if p.get("proposal_id") else "",
        source_effect=effect,
    )


def register() -> None:
    register_effect_handler("notify", _notify)
    register_effect_handler("propose_escalation", _propose_escalation)
