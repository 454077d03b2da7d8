"""Idle and absolute time limits for staff sessions (ADR 0007).

The session records when its user logged in and when it last saw a request. A request that
comes more than ``SESSION_IDLE_TIMEOUT_SECONDS`` after the previous one, or more than
``SESSION_ABSOLUTE_TIMEOUT_SECONDS`` after login, logs the user out first: a page request is
redirected to the login page, an API request (``SESSION_TIMEOUT_API_PREFIXES``, or one that
asks for JSON only) gets 401.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from carehub.core import clock

LOGIN_AT_KEY = "_carehub_login_at"
LAST_ACTIVITY_KEY = "_carehub_last_activity"


def _now() -> float:
    return clock.now().timestamp()


@receiver(user_logged_in, dispatch_uid="carehub.accounts.session_timeout.stamp_login")
def stamp_login(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """Start both clocks at login (``login()`` has already given the session a new key)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    now = _now()
    session[LOGIN_AT_KEY] = now
    session[LAST_ACTIVITY_KEY] = now


def _wants_api_response(request: HttpRequest) -> bool:
    if any(request.path.startswith(prefix) for prefix in settings.SESSION_TIMEOUT_API_PREFIXES):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def session_expired(request: HttpRequest, now: float) -> str | None:
    """Why the request's session is past a limit ("idle" or "absolute"), or None."""
    session = request.session
    login_at = session.get(LOGIN_AT_KEY)
    last_activity = session.get(LAST_ACTIVITY_KEY)
    if login_at is not None and now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS:
        return "absolute"
    if last_activity is not None and now - last_activity > settings.SESSION_IDLE_TIMEOUT_SECONDS:
        return "idle"
    return None


class SessionTimeoutMiddleware:
    """Goes after AuthenticationMiddleware; only sessions of logged-in users are timed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = _now()
            if session_expired(request, now) is not None:
                logout(request)
                if _wants_api_response(request):
                    return JsonResponse({"detail": "Session expired."}, status=401)
                return redirect_to_login(request.get_full_path())
            # A session from before these limits existed starts its clocks now.
            request.session.setdefault(LOGIN_AT_KEY, now)
            # Activity is stamped at most once per SESSION_ACTIVITY_RESOLUTION_SECONDS, so a
            # busy user's pages do not each rewrite the session row (the idle limit may then
            # end a session up to that much early, never late).
            last = request.session.get(LAST_ACTIVITY_KEY)
            if last is None or now - last >= settings.SESSION_ACTIVITY_RESOLUTION_SECONDS:
                request.session[LAST_ACTIVITY_KEY] = now
        return self.get_response(request)
