"""API tokens: `POST /api/v1/auth/token` exchanges a username and password for a token,
`DELETE` revokes the token the request is authenticated with."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carehub.api.requests import validated
from carehub.api.schema import problems
from carehub.api.services import api_token_issue, api_token_revoke
from carehub.core.exceptions import InvalidInput


class AuthTokenApi(APIView):
    """Obtain (POST) and revoke (DELETE) an API token."""

    class ObtainInputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    class ObtainOutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text='Send as "Authorization: Token <token>"')
        expires_at = serializers.DateTimeField(allow_null=True)

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_authenticators(self) -> list:
        # Obtaining a token reads credentials from the body only (no session, so no CSRF).
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    def get_authenticate_header(self, request: Request) -> str:
        return "Token"

    @extend_schema(
        operation_id="auth_token_obtain",
        tags=["auth"],
        auth=[],
        request=ObtainInputSerializer,
        responses={201: ObtainOutputSerializer, **problems(400, 429)},
    )
    def post(self, request: Request) -> Response:
        data = validated(self.ObtainInputSerializer, request.data)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None:
            raise exceptions.AuthenticationFailed("Wrong username or password.")
        token, expires_at = api_token_issue(user=user)
        output = self.ObtainOutputSerializer({"token": token, "expires_at": expires_at})
        return Response(output.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="auth_token_revoke",
        tags=["auth"],
        request=None,
        responses={204: OpenApiResponse(description="Revoked"), **problems(400)},
    )
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, AuthToken):
            raise InvalidInput(
                "Only a token can be revoked: send it in the Authorization header.",
                extra={"field": "Authorization"},
            )
        api_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)
