from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from carehub.core.views import healthz_view

urlpatterns = [
    path("healthz", healthz_view, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("carehub.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("me/", include("carehub.portal.urls")),
    path("dev/", include("carehub.messaging.urls")),
    path("", include("carehub.checkins.urls")),
    path("", include("carehub.web.urls")),
]
