"""Application errors raised by services; the interfaces (API, UI, commands) translate them."""


class ApplicationError(Exception):
    """Base class: a message for people and a stable machine-readable code."""

    code = "application_error"

    def __init__(self, message: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    code = "not_found"


class NotPermitted(ApplicationError):
    code = "not_permitted"


class Conflict(ApplicationError):
    code = "conflict"


class InvalidInput(ApplicationError):
    code = "invalid_input"


class CriteriaNotMet(ApplicationError):
    """A clinical guard does not hold; `extra["explanation"]` says which values were read."""

    code = "criteria_not_met"
