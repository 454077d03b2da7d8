"""Work a web process does once, before its first request: importing the URL configuration
(and every view module with it), the published pathway definitions, the diagram layouts and
the staff pages' templates. Called by gunicorn when a worker has loaded the application
(`config/gunicorn.conf.py`), so the first requests after a start or a worker restart are not
seconds slower than the rest (and these long-lived objects are frozen with the others)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

TEMPLATES = (
    "web/caseload.html",
    "web/partials/caseload_results.html",
    "web/patient.html",
    "web/flags.html",
    "web/tasks.html",
    "web/workspace.html",
)


def warm_up() -> None:
    from django.template.loader import get_template
    from django.urls import get_resolver, reverse

    from carehub.pathways.registry import registry
    from carehub.web.diagram import pathway_diagrams

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    reverse("web:caseload")  # builds the reverse lookup tables
    for definition in registry():
        pathway_diagrams(definition, {})  # the definition's layouts, computed once per process
    for name in TEMPLATES:
        get_template(name)
    logger.info("web process warmed up")
