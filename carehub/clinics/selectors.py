"""Reads of a clinic's configuration: the thresholds its pathways use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carehub.clinics.models import Clinic, ClinicThreshold
from carehub.core.exceptions import NotFound
from carehub.pathways.registry import registry


@dataclass(frozen=True)
class ThresholdView:
    """One pathway threshold as a clinic uses it: the definition's default with its source, and
    the clinic's own value and source when it set one."""

    pathway_key: str
    name: str
    unit: str
    description: str
    default: Any
    default_source: str
    value: Any
    source: str
    overridden: bool
    note: str
    updated_at: datetime | None
    updated_by_id: int | None


def threshold_specs() -> dict[tuple[str, str], Any]:
    """(pathway key, threshold name) → the spec of the latest published version declaring it."""
    specs: dict[tuple[str, str], Any] = {}
    for definition in sorted(registry(), key=lambda d: (d.key, d.version)):
        for name, spec in definition.thresholds.items():
            specs[(definition.key, name)] = spec
    return specs


def threshold_list_for_clinic(*, clinic_id: int) -> list[ThresholdView]:
    """Every threshold of every published pathway, by pathway and name (one query)."""
    rows = {
        (row.pathway_key, row.name): row
        for row in ClinicThreshold.objects.filter(clinic_id=clinic_id)
    }
    views = []
    for (key, name), spec in sorted(threshold_specs().items()):
        row = rows.get((key, name))
        views.append(
            ThresholdView(
                pathway_key=key,
                name=name,
                unit=spec.unit,
                description=spec.description,
                default=spec.default,
                default_source=spec.source,
                value=row.value if row else spec.default,
                source=row.source if row else spec.source,
                overridden=row is not None,
                note=row.note if row else "",
                updated_at=row.updated_at if row else None,
                updated_by_id=row.updated_by_id if row else None,
            )
        )
    return views


def threshold_get_for_clinic(*, clinic: Clinic, pathway_key: str, name: str) -> ThresholdView:
    for view in threshold_list_for_clinic(clinic_id=clinic.pk):
        if (view.pathway_key, view.name) == (pathway_key, name):
            return view
    raise NotFound("No such pathway threshold.")
