"""DRF views for the Django tests (imported only when DRF is installed)."""

from __future__ import annotations

from django.utils.decorators import method_decorator
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import api_view
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from clerk_guard.django.decorators import clerk_optional
from clerk_guard.django.drf import ClerkAuthentication, HasOrgPermission, HasOrgRole
from tests.django.views import login_not_required


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


# Protect-all mode: DRF marks every view login_required = False; that must not exempt it ----------


class Plain(APIView):
    """DRF's default permissions: anyone may call it, unless protect-all says otherwise."""

    def get(self, request):
        return Response({"user_id": request.auth.user_id if request.auth else None})


class Things(ViewSet):
    """A ViewSet served by a router."""

    def list(self, request):
        return Response({"user_id": request.auth.user_id if request.auth else None})


@api_view(["GET"])
def hello(request):
    """An @api_view function view."""
    return Response({"user_id": request.auth.user_id if request.auth else None})


@method_decorator(login_not_required, name="dispatch")
class PublicPlain(Plain):
    """Exempted on purpose, as Django documents for class-based views."""


@method_decorator(login_not_required, name="dispatch")
class PublicThings(Things):
    """A ViewSet exempted on purpose, served by a router."""


@method_decorator(clerk_optional, name="dispatch")
class OptionalThings(Things):
    """A ViewSet marked clerk_optional, served by a router."""


@clerk_optional
@api_view(["GET"])
def optional_hello(request):
    """An @api_view function view marked clerk_optional."""
    return Response({"user_id": request.auth.user_id if request.auth else None})


router = DefaultRouter(trailing_slash=False)
router.register("things", Things, basename="things")
router.register("public-things", PublicThings, basename="public-things")
router.register("optional-things", OptionalThings, basename="optional-things")
