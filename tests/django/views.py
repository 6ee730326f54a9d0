"""Views for the Django tests: sync and async twins of each kind of protection."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from clerk_guard.django.decorators import (
    clerk_optional,
    clerk_permission_required,
    clerk_required,
    clerk_role_required,
)

try:
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # Django < 5.1: the same marker, set by hand

    def login_not_required(view):
        view.login_required = False
        return view


def describe(request: HttpRequest) -> dict:
    auth = getattr(request, "clerk", None)
    user = request.user
    return {
        "user_id": auth.user_id if auth else None,
        "source": auth.token_source if auth else None,
        "org_role": auth.org_role if auth else None,
        "user": str(user),
        "user_class": user.__class__.__name__,
        "is_authenticated": user.is_authenticated,
        "pk": user.pk,
    }


def plain(request):
    return JsonResponse(describe(request))


async def aplain(request):
    return JsonResponse(describe(request))


@login_not_required
def open_view(request):
    return JsonResponse(describe(request))


@login_not_required
async def aopen_view(request):
    return JsonResponse(describe(request))


@clerk_required
def required(request):
    return JsonResponse(describe(request))


@clerk_required
async def arequired(request):
    return JsonResponse(describe(request))


@clerk_required(role="org:admin")
def admin(request):
    return JsonResponse(describe(request))


@clerk_required(role="org:admin")
async def aadmin(request):
    return JsonResponse(describe(request))


@clerk_role_required("admin")
def role(request):
    return JsonResponse(describe(request))


@clerk_permission_required("org:invoices:read")
def permission(request):
    return JsonResponse(describe(request))


@clerk_permission_required("org:invoices:read")
async def apermission(request):
    return JsonResponse(describe(request))


@clerk_optional
def optional(request):
    return JsonResponse(describe(request))


@clerk_optional
async def aoptional(request):
    return JsonResponse(describe(request))


async def auser(request):
    user = await request.auser()
    return JsonResponse({"user": str(user), "is_authenticated": user.is_authenticated})


class MappedUser:
    """A stand-in for a project's user model, built by the CLERK_GUARD_USER hook."""

    is_authenticated = True
    calls = 0

    def __init__(self, clerk_id: str) -> None:
        self.pk = f"local-{clerk_id}"

    def __str__(self) -> str:
        return self.pk


def map_user(request, auth):
    """The CLERK_GUARD_USER hook under test: counts its calls."""
    MappedUser.calls += 1
    if auth.user_id == "user_unknown":
        return None
    return MappedUser(auth.user_id)


class StaffUser:
    """A user signed in with a Django session (for the admin, say)."""

    is_authenticated = True
    pk = "staff"

    def __str__(self) -> str:
        return "staff"


class SessionLoginMiddleware:
    """Stands in for Django's AuthenticationMiddleware: a lazy ``request.user`` (and
    ``request.auser``) that is a signed-in StaffUser when ``X-Staff`` is sent, else anonymous.
    ``resolved`` counts how often the lazy user was looked up."""

    resolved = 0

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.contrib.auth.models import AnonymousUser
        from django.utils.functional import SimpleLazyObject

        def load():
            SessionLoginMiddleware.resolved += 1
            return StaffUser() if "HTTP_X_STAFF" in request.META else AnonymousUser()

        async def auser():
            return load()

        request.user = SimpleLazyObject(load)
        request.auser = auser
        return self.get_response(request)
