"""/fhir/R4/: the FHIR R4 endpoints (carehub.fhir.views)."""

from django.urls import path

from carehub.fhir.views import (
    FhirExportApi,
    FhirExportFileApi,
    FhirExportStatusApi,
    FhirMetadataApi,
    FhirReadApi,
    FhirSearchApi,
    FhirTransactionApi,
)

app_name = "fhir"

urlpatterns = [
    path("", FhirTransactionApi.as_view(), name="transaction"),
    path("metadata", FhirMetadataApi.as_view(), name="metadata"),
    path("Group/<str:group_id>/$export", FhirExportApi.as_view(), name="export"),
    path("$export-status/<str:job_id>", FhirExportStatusApi.as_view(), name="export-status"),
    path(
        "$export-file/<str:job_id>/<str:resource_type>.ndjson",
        FhirExportFileApi.as_view(),
        name="export-file",
    ),
    path("<str:resource_type>", FhirSearchApi.as_view(), name="search"),
    path("<str:resource_type>/<str:resource_id>", FhirReadApi.as_view(), name="read"),
]
