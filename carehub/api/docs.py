"""The OpenAPI schema (`/api/schema/`) and its interactive docs (`/api/docs/`), behind
`SchemaAccess` (`API_SCHEMA_PUBLIC`). A refusal is the usual problem+json, whatever renderer
the page itself uses (YAML, the Swagger UI's HTML)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE
from carehub.api.permissions import SchemaAccess
from carehub.api.requests import ApiViewMixinBase


class _ProblemOnError(ApiViewMixinBase):
    def handle_exception(self, exc: Exception) -> Response:
        response: Response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = PROBLEM_CONTENT_TYPE
        return response


class SchemaApi(_ProblemOnError, SpectacularAPIView):
    permission_classes = [SchemaAccess]


class SchemaDocsView(_ProblemOnError, SpectacularSwaggerSplitView):
    permission_classes = [SchemaAccess]
