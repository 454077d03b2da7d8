"""Every write to pathway instances, by the name the other apps import (README, "Modules").

The code lives by purpose:
- `dispatch/` (`service.py`): `pathway_dispatch`, the one way an event changes an enrolment,
  and approve/reject; behind one store (`dispatch/store.py`: lock, snapshot, write; ADR 0030);
- `lifecycle.py`: start, pause, resume, discharge;
- `routing.py`: which enrolments an event goes to, the checks every door shares.
"""

from __future__ import annotations

from carehub.pathways.dispatch.service import (
    DispatchRequest,
    DispatchResult,
    dispatch_in_transaction,
    event_refusal,
    pathway_dispatch,
    proposal_approve,
    proposal_reject,
)
from carehub.pathways.lifecycle import (
    DISCHARGE_EVENTS,
    discharge_event_for,
    enrolment_discharge,
    enrolment_pause,
    enrolment_resume,
    enrolment_start,
)
from carehub.pathways.routing import (
    enrolments_accepting,
    event_is_declared,
    pathway_event_send,
    patient_event_dispatch,
    patient_event_send,
)

__all__ = [
    "DISCHARGE_EVENTS",
    "DispatchRequest",
    "DispatchResult",
    "discharge_event_for",
    "dispatch_in_transaction",
    "enrolment_discharge",
    "enrolment_pause",
    "enrolment_resume",
    "enrolment_start",
    "enrolments_accepting",
    "event_is_declared",
    "event_refusal",
    "pathway_dispatch",
    "pathway_event_send",
    "patient_event_dispatch",
    "patient_event_send",
    "proposal_approve",
    "proposal_reject",
]
