"""System check (`manage.py check`, run at start-up): the instrument library loads, and no
licensed instrument carries wording."""

from typing import Any

from django.core.checks import CheckMessage, Error, register

from carehub.instruments.definition import licensed_wording_problems
from carehub.instruments.loader import InstrumentError, LibraryError, load_directories
from carehub.instruments.registry import library_dirs

HINT = "python manage.py instrument validate FILE"


@register("instruments")
def check_instrument_library(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        library = load_directories(library_dirs())
    except LibraryError as exc:
        return [
            Error(f"{error.source}:{problem}", id="instruments.E001", hint=HINT)
            for error in exc.errors
            for problem in error.problems
        ]
    except InstrumentError as exc:
        return [Error(str(exc), id="instruments.E001", hint=HINT)]
    errors: list[CheckMessage] = []
    for definition in library:
        for problem in licensed_wording_problems(definition):
            errors.append(
                Error(
                    f"{definition.ref} is licensed but carries wording: {problem}",
                    hint="a licensed instrument is a score entered by staff, with no items",
                    id="instruments.E002",
                )
            )
    return errors
