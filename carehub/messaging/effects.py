"""What messaging does for pathway effects: `notify` and `propose_escalation` enqueue messages to
the roles they name. Registered by kind with the outbox (carehub.pathways.effects) from
MessagingConfig.ready().

And for red flags in recorded answers (carehub.observations.scores): an alert to the care team
for each, registered as the `alert` red-flag handler."""

from __future__ import annotations

from datetime import datetime

from carehub.messaging.services import message_enqueue_for_roles
from carehub.observations.scores import RedFlagsRaised, register_red_flag_handler
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


# Red-flag urgency → who is alerted.
RED_FLAG_ROLES = {
    "immediate": ["coordinator", "physician", "psychologist"],
    "same_day": ["coordinator", "physician"],
    "next_business_day": ["coordinator"],
}


def _alert_red_flags(raised: RedFlagsRaised) -> None:
    """An alert to the care team for each red flag, once per subject and flag. Immediate and
    same-day flags are urgent: published right after commit, deaf to quiet hours and
    digests."""
    for flag in raised.red_flags:
        message_enqueue_for_roles(
            patient=raised.patient,
            roles=RED_FLAG_ROLES[flag.urgency],
            purpose="red_flag_alert",
            body=f"Red flag ({flag.urgency.replace('_', ' ')}): {flag.staff_message}",
            idempotency_key_prefix=raised.key(flag),
            urgency="urgent" if flag.urgency != "next_business_day" else "routine",
            why=f"{raised.instrument} answer: {flag.code}",
            subject_key=raised.subject.key,
        )


def register() -> None:
    register_effect_handler("notify", _notify)
    register_effect_handler("propose_escalation", _propose_escalation)
    register_red_flag_handler("alert", _alert_red_flags)
