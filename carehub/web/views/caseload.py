"""The caseload dashboard: every active patient in the user's scope, with filters, sorting,
search and keyset pagination (`carehub.web.selectors.caseload.caseload_page`)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from carehub.accounts.models import STAFF_ROLES, Role
from carehub.accounts.requests import StaffHttpRequest
from carehub.audit.models import Action
from carehub.audit.services import audit_record
from carehub.care_access import Operation
from carehub.core.exceptions import InvalidInput
from carehub.web.access import staff_page
from carehub.web.caseload_rows import row_html
from carehub.web.forms import CaseloadFilterForm
from carehub.web.selectors.caseload import (
    CaseloadQuery,
    Sort,
    caseload_definitions,
    caseload_page,
    filter_options,
)


def disciplines() -> list[tuple[str, str]]:
    return [(role.value, role.label) for role in Role if role in STAFF_ROLES]


@require_GET
@staff_page(Operation.CASELOAD_VIEW, Action.PATIENT_LIST)
def caseload_view(request: StaffHttpRequest) -> HttpResponse:
    # Read once: the filters offer them and the rows are labelled with them.
    definitions = caseload_definitions(request.user)
    options = filter_options(definitions)
    data = request.GET.copy()
    data.setdefault("size", str(settings.WEB_CASELOAD_PAGE_SIZE))  # what the select shows
    data.setdefault("sort", Sort.ATTENTION)  # needs attention first, unless asked
    form = CaseloadFilterForm(
        data,
        tracks=options["tracks"],
        stages=options["stages"],
        disciplines=disciplines(),
    )
    cleaned = form.cleaned_data if form.is_valid() else {}
    query = CaseloadQuery(
        search=cleaned.get("q", ""),
        track=cleaned.get("track", ""),
        stage=cleaned.get("stage", ""),
        discipline=cleaned.get("discipline", ""),
        flag=cleaned.get("flag", ""),
        sort=cleaned.get("sort") or Sort.ATTENTION,
        page_size=cleaned.get("size") or settings.WEB_CASELOAD_PAGE_SIZE,
        cursor=cleaned.get("cursor", ""),
    )
    status = 200 if form.is_valid() else 400
    try:
        page = caseload_page(user=request.user, query=query, definitions=definitions)
    except InvalidInput as exc:
        form.add_error(None, exc.message)
        page = caseload_page(
            user=request.user,
            query=CaseloadQuery(sort=query.sort),
            definitions=definitions,
        )
        status = 400
    audit_record(
        request=request,
        action=Action.PATIENT_LIST,
        patients=[row.patient for row in page.rows],
        detail={"page": "caseload", "listed": len(page.rows)},
    )
    for row in page.rows:
        row.html = row_html(row)
    params = request.GET.copy()
    params.pop("cursor", None)
    template = "web/partials/caseload_results.html" if request.htmx else "web/caseload.html"
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "base_query": params.urlencode(),
            "nav": "caseload",
        },
        status=status,
    )
