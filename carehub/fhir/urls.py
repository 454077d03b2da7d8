"""/fhir/R4/: the FHIR R4 endpoints (carehub.fhir.views)."""

from django.urls import path

from carehub.fhir.views import FhirMetadataApi, FhirReadApi, FhirSearchApi, FhirTransactionApi

app_name = "fhir"

urlpatterns = [
    path("", FhirTransactionApi.as_view(), name="transaction"),
    path("metadata", FhirMetadataApi.as_view(), name="metadata"),
    path("<str:resource_type>", FhirSearchApi.as_view(), name="search"),
    path("<str:resource_type>/<str:resource_id>", FhirReadApi.as_view(), name="read"),
]
