"""`PlainSelect` renders exactly what Django's `Select` renders."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms

from carehub.web.forms import CaseloadFilterForm, PlainSelect

CHOICES: list[Any] = [
    ("", "Any <track>"),
    ("a&b", 'Quote " and & amp'),
    (10, "10"),
    ("Group", [("g1", "In a group"), ("g2", "Also <here>")]),
]


@pytest.mark.parametrize("value", [None, "", "a&b", 10, "10", "g2", ["a&b", "g1"], "missing"])
@pytest.mark.parametrize(
    "attrs",
    [None, {"id": "id_x"}, {"id": "id_x", "required": True, "disabled": False, "data-n": 3}],
)
def test_renders_like_djangos_select(value: Any, attrs: dict[str, Any] | None) -> None:
    expected = forms.Select(choices=CHOICES).render("x", value, attrs=attrs)
    assert PlainSelect(choices=CHOICES).render("x", value, attrs=attrs) == expected


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"size": "50", "sort": "name"},
        {"track": "ladder", "stage": "late", "flag": "urgent", "size": "10", "sort": "attention"},
        {"track": "nope", "size": "7", "sort": "?", "discipline": "<x>"},
    ],
)
def test_the_caseload_form_renders_as_with_djangos_select(data: dict[str, str]) -> None:
    def form(widget: type[forms.Select]) -> CaseloadFilterForm:
        made = CaseloadFilterForm(
            data,
            tracks=[("ladder", "Treatment ladder"), ("psych", "Psychology & <CBT>")],
            stages=["early", "late_stage"],
            disciplines=[("coordinator", "Coordinator")],
        )
        for field in made.fields.values():
            if isinstance(field.widget, forms.Select):
                plain = field.widget
                field.widget = widget(attrs=plain.attrs, choices=plain.choices)
        made.is_valid()
        return made

    plain, django = form(PlainSelect), form(forms.Select)
    for name in plain.fields:
        assert str(plain[name]) == str(django[name]), name
