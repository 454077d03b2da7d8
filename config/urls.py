from django.contrib import admin
from django.urls import include, path

from carehub.core.views import healthz_view

urlpatterns = [
    path("healthz", healthz_view, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("carehub.checkins.urls")),
]
