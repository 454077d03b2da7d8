"""System check (`manage.py check`, run at start-up): every pathway definition loads, and the
roles it names are carehub roles."""

from typing import Any

from django.core.checks import CheckMessage, Error, register

from carehub.accounts.models import STAFF_ROLES
from carehub.pathways.registry import pathway_dirs
from workflows import DefinitionError, load_directories

KNOWN_ROLES = STAFF_ROLES  # a patient account never approves nor owns a task


@register("pathways")
def check_pathway_definitions(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        registry = load_directories(pathway_dirs())
    except DefinitionError as exc:
        return [
            Error(
                f"{exc.source}: {problem}",
                id="pathways.E001",
                hint="python manage.py pathway validate FILE",
            )
            for problem in exc.problems
        ]
    errors: list[CheckMessage] = []
    for definition in registry:
        for role in definition.roles:
            if role not in KNOWN_ROLES:
                errors.append(
                    Error(
                        f"{definition.ref} names role '{role}', which is not a carehub staff role",
                        hint=f"staff roles: {', '.join(sorted(KNOWN_ROLES))}",
                        id="pathways.E002",
                    )
                )
    return errors
