"""FHIR R4 doors: read and search endpoints under `/fhir/R4/` (ADR 0023)."""
