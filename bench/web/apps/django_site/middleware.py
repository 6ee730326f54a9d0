"""clerk-backend-api's ``authenticate_request`` as a Django middleware (sync and async)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from clerk_backend_api.security import authenticate_request, authenticate_request_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps import sdk_options


class ClerkSDKMiddleware:
    """Signed out (missing or invalid token): 401. Signed in: ``request.clerk_payload``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.options = sdk_options()
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        state = authenticate_request(request, self.options)  # type: ignore[arg-type]
        if not state.is_signed_in:
            return JsonResponse({"error": "Unauthorized"}, status=401)
        request.clerk_payload = state.payload  # type: ignore[attr-defined]
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        state = await authenticate_request_async(request, self.options)  # type: ignore[arg-type]
        if not state.is_signed_in:
            return JsonResponse({"error": "Unauthorized"}, status=401)
        request.clerk_payload = state.payload  # type: ignore[attr-defined]
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response
