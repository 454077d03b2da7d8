from django.contrib import admin

from carehub.checkins.models import Checkin, CheckinLink, CheckinSeries
from carehub.core.admin import ReadOnlyAdmin
from carehub.patients.admin import OfAPatient


@admin.register(CheckinSeries)
class CheckinSeriesAdmin(OfAPatient, ReadOnlyAdmin):
    list_display = ["patient", "series", "instrument", "every", "started_at", "stopped_at"]
    list_filter = ["instrument"]


@admin.register(Checkin)
class CheckinAdmin(OfAPatient, ReadOnlyAdmin):
    list_display = ["patient", "instrument", "sequence", "due_at", "closes_at", "status", "score"]
    list_filter = ["status", "instrument"]
    search_fields = ["patient__mrn"]
    date_hierarchy = "due_at"


@admin.register(CheckinLink)
class CheckinLinkAdmin(ReadOnlyAdmin):
    """When links were sent and opened; the token itself is never stored or shown."""

    clinic_path = "checkin__patient__clinic"

    list_display = ["checkin", "created_at", "expires_at", "last_opened_at"]
    exclude = ["token_hash"]
    list_select_related = ["checkin__patient"]
