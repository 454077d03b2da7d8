"""Logging in and out of the web UI. django-axes guards the form (5 failures per username and
IP address lock that pair: `AXES_LOCKOUT_TEMPLATE` explains); `login()` rotates the session key
and `carehub.accounts.session_timeout` starts the idle and absolute clocks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from carehub.accounts.models import Role
from carehub.care_access import CARE_TEAM_ROLES

PATIENT_HOME = "/me/"


def home_path(role: str) -> str:
    """Where a user lands: patients on their portal, therapists in their workspace, other
    staff on the caseload."""
    if role == Role.PATIENT:
        return PATIENT_HOME
    if role in CARE_TEAM_ROLES:
        return "/my/"
    return "/caseload/"


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["idle_minutes"] = settings.SESSION_IDLE_TIMEOUT_SECONDS // 60
        return context

    def get_default_redirect_url(self) -> str:
        return home_path(getattr(self.request.user, "role", ""))

    def get_success_url(self) -> str:
        url = self.get_redirect_url()
        user = self.request.user
        # A patient account never lands on a staff page, whatever `next` says.
        if url and getattr(user, "role", "") != Role.PATIENT:
            return url
        return self.get_default_redirect_url()


@require_http_methods(["GET", "POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    """GET asks to confirm (a link cannot log anyone out); POST logs out."""
    if request.method == "POST":
        logout(request)
        return render(request, "web/logged_out.html")
    if not request.user.is_authenticated:
        return redirect("web:login")
    return render(request, "web/logout.html")


def home_view(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("web:login")
    return redirect(home_path(request.user.role))
