"""One route, ``/me``; its view is sync under WSGI and async under ASGI."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path


def _payload(request: HttpRequest) -> dict[str, str]:
    auth = getattr(request, "clerk", None)
    if auth is not None:  # clerk-guard
        return {"user_id": auth.user_id}
    payload = getattr(request, "clerk_payload", None)
    if payload is not None:  # clerk-backend-api
        return {"user_id": payload["sub"]}
    return {"user_id": "anonymous"}


def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_payload(request))


async def ame(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_payload(request))


urlpatterns = [path("me", ame if settings.SERVER == "asgi" else me)]
