"""The three routes of every clerk-guard example (contract §8), plus a health check."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from clerk_guard.django.decorators import clerk_optional, clerk_required

try:  # Django 5.1+
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # Django 4.2: clerk_optional also exempts a view from protect-all mode
    login_not_required = clerk_optional


@login_not_required
def public(request: HttpRequest) -> JsonResponse:
    """No token needed."""
    return JsonResponse({"ok": True})


def me(request: HttpRequest) -> JsonResponse:
    """Protected by the middleware's protect-all mode."""
    auth = request.clerk  # type: ignore[attr-defined]
    return JsonResponse(auth.summary())


@clerk_required(role="org:admin")
async def admin(request: HttpRequest) -> JsonResponse:
    """Needs the organization role org:admin: 403 for other signed-in users."""
    return JsonResponse({"ok": True, "user_id": request.clerk.user_id})  # type: ignore[attr-defined]


def health(request: HttpRequest) -> JsonResponse:
    """Exempt by path (CLERK_GUARD_EXEMPT_PATHS)."""
    return JsonResponse({"status": "ok"})
