"""The report of a simulation as plain data (JSON-ready), and the differences between two.

Sections: coverage (every state and transition with the patients who reached it; the
unreached named), time to each stage (distribution, days from enrolment), proposals per week by
kind, workload per discipline per week (tasks, sessions), messages per patient per week against
the daily budget, red flags, patients stuck (no transition for the cohort's `stuck_after`).
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import timedelta
from typing import Any

from workflows.definition import PathwayDefinition, transition_id
from workflows.model import ThresholdValue
from workflows.simulate.cohort import Cohort
from workflows.simulate.runner import Tally

REPORT_VERSION = 1


def _distribution(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else ordered * 3
    return {
        "min": round(ordered[0], 1),
        "p25": round(q[0], 1),
        "median": round(q[1], 1),
        "p75": round(q[2], 1),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


def _weekly(counter: Counter[int], weeks: int) -> list[int]:
    return [counter.get(week, 0) for week in range(weeks)]


def build_report(
    definition: PathwayDefinition,
    cohort: Cohort,
    tally: Tally,
    *,
    seed: int,
    thresholds: dict[str, ThresholdValue] | None = None,
) -> dict[str, Any]:
    weeks = -(-tally.days // 7)
    patients = tally.patients

    states = []
    for track_name, track in definition.tracks.items():
        for state_name, spec in track.states.items():
            key = f"{track_name}.{state_name}"
            reached = len(tally.state_patients.get(key, ()))
            states.append(
                {
                    "track": track_name,
                    "state": state_name,
                    "title": spec.title or state_name,
                    "stage": spec.stage,
                    "patients": reached,
                    "share": round(reached / patients, 4) if patients else 0.0,
                    "days_to_reach": _distribution(tally.state_days.get(key, [])),
                }
            )
    transitions = []
    for track_name, track in definition.tracks.items():
        for index, move in enumerate(track.transitions):
            tid = transition_id(track_name, index)
            transitions.append(
                {
                    "id": tid,
                    "track": track_name,
                    "from": list(move.source),
                    "to": move.target,
                    "event": move.event,
                    "description": move.description.strip(),
                    "approval": move.approval is not None,
                    "patients": len(tally.transition_patients.get(tid, ())),
                    "times": tally.transition_times.get(tid, 0),
                }
            )

    stages = {}
    for track_name, track in definition.tracks.items():
        for stage in track.stages:
            key = f"{track_name}.{stage}"
            days = tally.stage_days.get(key, [])
            stages[key] = {
                "patients": len(days),
                "days": _distribution(days),
                "values": sorted(round(d, 1) for d in days),
                "histogram": _histogram(days, tally.days),
            }

    per_patient_week = _messages_per_patient_week(tally, weeks)
    stuck_after = cohort.stuck_after
    end = tally.start + timedelta(days=tally.days)
    stuck: list[dict[str, Any]] = []
    for index, last in sorted(tally.last_move.items()):
        if end - last >= stuck_after and index in tally.final_states:
            final = tally.final_states[index]
            if all(
                definition.state(track, state).final for track, state in final.items()
            ):  # finished, not stuck
                continue
            idle = round((end - last) / timedelta(weeks=1), 1)
            stuck.append(
                {
                    "patient": index,
                    "archetype": tally.archetype_of.get(index, ""),
                    "states": final,
                    "weeks_without_transition": idle,
                }
            )
    stuck_by_state = Counter(f"ladder.{p['states'].get('ladder', '?')}" for p in stuck)

    return {
        "report_version": REPORT_VERSION,
        "pathway": definition.ref,
        "pathway_title": definition.title,
        "cohort": cohort.name,
        "seed": seed,
        "days": tally.days,
        "weeks": weeks,
        "start": tally.start.isoformat(),
        "patients": patients,
        "archetypes": dict(sorted(Counter(tally.archetype_of.values()).items())),
        "thresholds": {
            name: {"value": v.value, "source": v.source} for name, v in (thresholds or {}).items()
        },
        "engine": {
            "decisions": tally.decisions,
            "queue_items": tally.queue_items,
            "timers_fired": tally.timers_fired,
            "refused": dict(tally.refused),
            "completed": tally.completed,
            "drop_outs": tally.drop_outs,
        },
        "coverage": {
            "states": states,
            "transitions": transitions,
            "states_reached": sum(1 for s in states if s["patients"]),
            "states_total": len(states),
            "transitions_taken": sum(1 for t in transitions if t["patients"]),
            "transitions_total": len(transitions),
            "unreached_states": [f"{s['track']}.{s['state']}" for s in states if not s["patients"]],
            "untaken_transitions": [_describe(t) for t in transitions if not t["patients"]],
        },
        "time_to_stage": stages,
        "proposals": {
            "per_week": {kind: _weekly(c, weeks) for kind, c in sorted(tally.proposals.items())},
            "totals": {kind: sum(c.values()) for kind, c in sorted(tally.proposals.items())},
            "outcomes": dict(tally.proposal_outcomes),
        },
        "workload": {
            "tasks_per_week": {d: _weekly(c, weeks) for d, c in sorted(tally.tasks.items())},
            "sessions_per_week": {d: _weekly(c, weeks) for d, c in sorted(tally.sessions.items())},
            "tasks_total": {d: sum(c.values()) for d, c in sorted(tally.tasks.items())},
            "sessions_total": {d: sum(c.values()) for d, c in sorted(tally.sessions.items())},
        },
        "checkins": dict(tally.checkins),
        "messages": {
            "outcomes": dict(tally.messages),
            "daily_budget": None,  # filled in by the caller that knows the setting
            "max_sent_in_a_patient_day": tally.max_sent_in_a_day,
            "per_patient_week": per_patient_week,
        },
        "red_flags": {
            "answers": dict(tally.red_flag_answers),
            "answers_per_week": _weekly(tally.red_flags_per_week, weeks),
            "pathway_flags": dict(tally.pathway_flags),
            "staff_alerts": dict(tally.staff_alerts),
        },
        "stuck": {
            "after_weeks": round(stuck_after / timedelta(weeks=1), 1),
            "count": len(stuck),
            "by_ladder_state": dict(stuck_by_state.most_common()),
            "patients": stuck[:200],
        },
    }


def _describe(transition: dict[str, Any]) -> str:
    target = transition["to"] or "(stays)"
    sources = ", ".join(transition["from"])
    return f"{transition['id']}: {sources} → {target} on {transition['event']}"


def _histogram(days: list[float], horizon: int, bins: int = 26) -> list[int]:
    width = max(horizon / bins, 1)
    counts = [0] * bins
    for value in days:
        counts[min(int(value / width), bins - 1)] += 1
    return counts


def _messages_per_patient_week(tally: Tally, weeks: int) -> dict[str, Any]:
    """Messages sent per patient and week: the mean per week (over patients enrolled), and the
    distribution over all patient-weeks with at least one message."""
    per_week: Counter[int] = Counter()
    busiest: Counter[int] = Counter()
    values = []
    for (_, week), sent in tally.sent_per_patient_week.items():
        per_week[week] += sent
        busiest[week] = max(busiest[week], sent)
        values.append(sent)
    patients = max(tally.patients, 1)
    return {
        "mean_per_week": [round(per_week.get(w, 0) / patients, 2) for w in range(weeks)],
        "max_per_week": _weekly(busiest, weeks),
        "distribution": _distribution([float(v) for v in values]),
    }


# --- comparing two runs ----------------------------------------------------------------------


def _median(report: dict[str, Any], stage: str) -> float | None:
    entry = report["time_to_stage"].get(stage)
    if entry is None or entry["days"] is None:
        return None
    return float(entry["days"]["median"])


def compare(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """What changes from `base` to `other` (same cohort and seed): time to each stage, how many
    reach it, proposals by kind, workload by discipline, coverage."""

    def delta(a: float | None, b: float | None) -> float | None:
        return round(b - a, 1) if a is not None and b is not None else None

    stages = {}
    for stage in sorted(set(base["time_to_stage"]) | set(other["time_to_stage"])):
        a, b = _median(base, stage), _median(other, stage)
        pa = base["time_to_stage"].get(stage, {}).get("patients", 0)
        pb = other["time_to_stage"].get(stage, {}).get("patients", 0)
        stages[stage] = {
            "median_days": [a, b],
            "median_days_change": delta(a, b),
            "patients": [pa, pb],
            "patients_change": pb - pa,
        }
    kinds = sorted(set(base["proposals"]["totals"]) | set(other["proposals"]["totals"]))
    proposals = {
        k: [base["proposals"]["totals"].get(k, 0), other["proposals"]["totals"].get(k, 0)]
        for k in kinds
    }
    disciplines = sorted(
        set(base["workload"]["tasks_total"]) | set(other["workload"]["tasks_total"])
    )
    tasks = {
        d: [base["workload"]["tasks_total"].get(d, 0), other["workload"]["tasks_total"].get(d, 0)]
        for d in disciplines
    }
    sessions = {
        d: [
            base["workload"]["sessions_total"].get(d, 0),
            other["workload"]["sessions_total"].get(d, 0),
        ]
        for d in sorted(
            set(base["workload"]["sessions_total"]) | set(other["workload"]["sessions_total"])
        )
    }
    base_unreached = set(base["coverage"]["unreached_states"])
    other_unreached = set(other["coverage"]["unreached_states"])
    return {
        "base": {"pathway": base["pathway"], "thresholds": base["thresholds"]},
        "other": {"pathway": other["pathway"], "thresholds": other["thresholds"]},
        "cohort": base["cohort"],
        "seed": base["seed"],
        "patients": base["patients"],
        "days": base["days"],
        "time_to_stage": stages,
        "proposals": proposals,
        "tasks": tasks,
        "sessions": sessions,
        "stuck": [base["stuck"]["count"], other["stuck"]["count"]],
        "red_flag_answers": [
            sum(base["red_flags"]["answers"].values()),
            sum(other["red_flags"]["answers"].values()),
        ],
        "coverage": {
            "newly_unreached_states": sorted(other_unreached - base_unreached),
            "newly_reached_states": sorted(base_unreached - other_unreached),
        },
    }
