"""carehub's pathway engine: pure Python, no Django, Celery or carehub imports.

Public API: `load_definition` / `check_file` (read and validate YAML), `start` / `decide` (the pure
step function), `mermaid` (diagrams), `MemoryInstance` (in-memory instance for tests), and the
value types in `workflows.model`.
"""

from workflows.definition import APPROVE, REJECT, PathwayDefinition
from workflows.diagram import mermaid
from workflows.engine import apply, available_events, check_sender, decide, start
from workflows.errors import (
    ApprovalNotPermitted,
    CriteriaNoLongerMet,
    DefinitionError,
    EventNotPermitted,
    InvalidEvent,
    Problem,
    UnknownEvent,
    UnknownProposal,
    WorkflowError,
)
from workflows.loader import check_file, check_text, load_definition, load_text
from workflows.memory import MemoryInstance
from workflows.model import Actor, Decision, Event, Outcome, Snapshot, ThresholdValue, TrackState
from workflows.registry import Registry, UnknownPathway, load_directories

__all__ = [
    "APPROVE",
    "REJECT",
    "Actor",
    "ApprovalNotPermitted",
    "CriteriaNoLongerMet",
    "Decision",
    "DefinitionError",
    "Event",
    "EventNotPermitted",
    "InvalidEvent",
    "MemoryInstance",
    "Outcome",
    "PathwayDefinition",
    "Problem",
    "Registry",
    "Snapshot",
    "ThresholdValue",
    "TrackState",
    "UnknownEvent",
    "UnknownPathway",
    "UnknownProposal",
    "WorkflowError",
    "apply",
    "available_events",
    "check_file",
    "check_sender",
    "check_text",
    "decide",
    "load_definition",
    "load_directories",
    "load_text",
    "mermaid",
    "start",
]
