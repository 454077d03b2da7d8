"""Reads shared by the domain apps' selectors."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

from carehub.core.exceptions import NotFound

M = TypeVar("M", bound=Model)


def filtered_by_given(queryset: QuerySet[M], **lookups: object) -> QuerySet[M]:
    """The queryset filtered by each lookup that was given (a value that is not None or empty),
    one after the other in the order named: a list's optional filters."""
    for lookup, value in lookups.items():
        if value:
            queryset = queryset.filter(**{lookup: value})
    return queryset


def one_or_not_found(queryset: QuerySet[M], what: str, **lookups: object) -> M:
    """The row of the queryset the lookups name, or `NotFound` ("No such <what>."): a row
    outside the user's scope reads as one that does not exist."""
    row = queryset.filter(**lookups).first()
    if row is None:
        raise NotFound(f"No such {what}.")
    return row
