from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views import defaults

from carehub.api.docs import SchemaApi, SchemaDocsView
from carehub.api.errors import problem_under_api
from carehub.core.views import favicon_view, healthz_view, livez_view, readyz_view
from carehub.web.faults import server_error_view
from carehub.web.views.errors import not_found_view

urlpatterns = [
    path("healthz", healthz_view, name="healthz"),
    path("livez", livez_view, name="livez"),
    path("readyz", readyz_view, name="readyz"),
    path("favicon.ico", favicon_view, name="favicon"),
    path("admin/", admin.site.urls),
    # Delivery-status callbacks of the SMS and e-mail providers (signed; no session, no CSRF).
    path("hooks/", include("carehub.messaging.hooks_urls")),
    path("api/v1/", include("carehub.api.urls")),
    path("fhir/R4/", include("carehub.fhir.urls")),
    path("api/schema/", SchemaApi.as_view(), name="api-schema"),
    path("api/docs/", SchemaDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("me/", include("carehub.portal.urls")),
    path("", include("carehub.checkins.urls")),
    path("", include("carehub.web.urls")),
]

# The development pages (what the recording backends "sent"): decided once, at import, so the
# production settings (DEV_PAGES False) never route /dev/ at all.
if settings.DEV_PAGES:
    urlpatterns.insert(0, path("dev/", include("carehub.messaging.urls")))

# Errors no view answered (no URL matched, an unexpected exception): problem+json under /api/,
# the site's HTML pages elsewhere.
handler400 = problem_under_api(400, defaults.bad_request)
handler403 = problem_under_api(403, defaults.permission_denied)
handler404 = problem_under_api(404, not_found_view)
handler500 = problem_under_api(500, server_error_view)
