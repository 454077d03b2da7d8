"""django-axes' handler (`AXES_HANDLER`) with a second limit: besides one username from one
address (`AXES_FAILURE_LIMIT` failures, the pair locked), one address trying many usernames
(password spraying) is refused once its failures over every username reach
`AXES_ADDRESS_FAILURE_LIMIT` within the cool-off (`AXES_COOLOFF_TIME`). The address limit is
higher than the pair's, so a clinic's staff behind one address are not locked out together by
a few typos."""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum

from carehub.core import clock


def address_failures(ip_address: str | None) -> int:
    """Failed logins from this address, over every username, within the cool-off."""
    if not ip_address:
        return 0
    since = clock.now() - settings.AXES_COOLOFF_TIME
    total = AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gte=since).aggregate(
        failures=Sum("failures_since_start")
    )["failures"]
    return int(total or 0)


class AddressThrottlingHandler(AxesDatabaseHandler):
    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        """The pair's failures, or the failure limit itself once the address has reached its
        own limit: axes then refuses (and locks) this request as it does a locked pair."""
        failures = int(super().get_failures(request, credentials))
        ip_address = getattr(request, "axes_ip_address", None)
        if address_failures(ip_address) >= settings.AXES_ADDRESS_FAILURE_LIMIT:
            return max(failures, int(get_failure_limit(request, credentials)))
        return failures
