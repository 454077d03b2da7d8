from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from carehub.core.health import (
    check_broker,
    check_database,
    check_database_writable,
    check_scheduler,
)


@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: 200 when the database and the broker answer, 503 otherwise.

    The scheduler lag is reported but does not fail the probe: a late scheduler must page a
    person, not make a load balancer drop a web process that is serving fine.
    """
    database = check_database()
    broker = check_broker()
    scheduler = check_scheduler() if database["status"] == "ok" else {"status": "unknown"}
    healthy = database["status"] == "ok" and broker["status"] == "ok"
    body = {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "broker": broker,
        "scheduler": scheduler,
    }
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def livez_view(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers requests. It reads nothing, so an outage of the database
    or the broker never gets a web process restarted (that would not fix them)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz_view(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when this process can serve, i.e. the database answers and takes writes;
    503 otherwise (down, or read-only), so a load balancer sends requests elsewhere. The broker
    is reported but does not fail readiness: without Redis, pages and the API still work and
    messages wait in the database for the dispatcher."""
    database = check_database_writable()
    broker = check_broker()
    ready = database["status"] == "ok"
    body = {
        "status": ("ok" if broker["status"] == "ok" else "degraded") if ready else "unavailable",
        "database": database,
        "broker": broker,
    }
    return JsonResponse(body, status=200 if ready else 503)


@require_GET
def favicon_view(request: HttpRequest) -> HttpResponseRedirect:
    """`/favicon.ico`, which browsers ask for on every page without an icon link: the static
    icon (cached like every static file)."""
    return HttpResponseRedirect(static("carehub/favicon.ico"))
