"""Names for the hand-written SQL statements, taken from the models' metadata.

The few statements carehub writes by hand (the dispatch, bulk audit and message inserts) name
tables and columns through these, so a renamed field or table cannot leave a statement behind,
and the type checker knows a column is there.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The model's field `name`, which has a column of its own (not a reverse relation)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise LookupError(f"{model.__name__}.{name} has no column of its own")
    return field


def column(field: models.Field[Any, Any]) -> str:
    """The field's column, quoted."""
    assert field.column is not None, f"{field} has no column"
    return connection.ops.quote_name(field.column)
