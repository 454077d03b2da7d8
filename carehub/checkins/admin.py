from django.contrib import admin

from carehub.checkins.models import CheckinSeries


@admin.register(CheckinSeries)
class CheckinSeriesAdmin(admin.ModelAdmin):
    list_display = ["patient", "series", "instrument", "every", "started_at", "stopped_at"]
    list_filter = ["instrument"]
    list_select_related = ["patient"]
    readonly_fields = [
        "patient",
        "enrolment",
        "series",
        "instrument",
        "every",
        "started_at",
        "stopped_at",
    ]
