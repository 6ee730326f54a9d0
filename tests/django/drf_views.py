"""DRF views for the Django tests (imported only when DRF is installed)."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from clerk_guard.django.drf import ClerkAuthentication, HasOrgPermission, HasOrgRole


class Me(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response(
            {
                "user": str(request.user),
                "user_class": request.user.__class__.__name__,
                "user_id": request.auth.user_id,
            }
        )

    def post(self, request):
        return self.get(request)


class Admin(Me):
    permission_classes = [HasOrgRole("org:admin")]


class Invoices(Me):
    permission_classes = [HasOrgPermission("org:invoices:read")]


class _Robot:
    is_authenticated = True

    def __str__(self) -> str:
        return "robot"


class ApiKeyAuthentication(BaseAuthentication):
    """Another scheme, tried after ClerkAuthentication returns None."""

    def authenticate(self, request):
        if request.META.get("HTTP_X_API_KEY") == "letmein":
            return _Robot(), None
        return None


class Fallback(APIView):
    authentication_classes = [ClerkAuthentication, ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"user": str(request.user)})
