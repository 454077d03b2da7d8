from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from carehub.core.health import check_broker, check_database, check_scheduler


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
