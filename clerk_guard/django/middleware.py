"""``ClerkGuardMiddleware``: verify the Clerk session on every request, sync or async.

Add it to ``MIDDLEWARE`` after ``AuthenticationMiddleware`` (if you use that)::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "clerk_guard.django.middleware.ClerkGuardMiddleware",
    ]

Every request then carries ``request.clerk`` (a :class:`~clerk_guard.SessionAuth`, or ``None``)
and, when signed in, a user-like ``request.user``. A user already signed in when the middleware
runs (a Django session login, for the admin) stays ``request.user``: the Clerk user only fills
an anonymous ``request.user``. Nothing is refused unless ``CLERK_GUARD_PROTECT_ALL = True``;
otherwise protect views with the decorators of :mod:`clerk_guard.django.decorators`.

``CLERK_GUARD_PROTECT_ALL = True`` covers Django REST framework views too. DRF (3.16+) marks
every ``as_view()`` result ``login_required = False``, to keep Django's
``LoginRequiredMiddleware`` out of its way; that blanket flag says nothing about the view, so
it is not read as an exemption. Exempt a DRF view with ``clerk_optional`` (on the ``as_view()``
or ``@api_view`` result, or with ``method_decorator(..., name="dispatch")`` on the class), with
``CLERK_GUARD_EXEMPT_PATHS``, or with ``method_decorator(login_not_required, name="dispatch")``
on the class (ViewSets served by a router included). See :func:`is_exempt`.

``CLERK_GUARD_WARM_UP = True`` fetches the key set when the middleware loads, so the first
request does not wait.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from clerk_guard import ConfigurationError
from clerk_guard.django._request import aauthenticate, attach, authenticate, refusal, to_response
from clerk_guard.django.conf import conf, state
from clerk_guard.wsgi import is_preflight

__all__ = ["ClerkGuardMiddleware", "is_exempt"]

#: Attribute set by :func:`~clerk_guard.django.decorators.clerk_optional` (and read here).
EXEMPT_ATTRIBUTE = "clerk_guard_exempt"


def is_exempt(request: HttpRequest, view_func: Callable[..., Any]) -> bool:
    """Whether protect-all mode lets this view through without a session.

    Views marked with ``clerk_optional`` or with Django's ``login_not_required`` (5.1+; on older
    Django, ``login_required = False`` set by hand), paths matching the whole of a
    ``CLERK_GUARD_EXEMPT_PATHS`` pattern, and CORS preflights (``OPTIONS`` with
    ``Access-Control-Request-Method``, sent by browsers without credentials).

    Django REST framework views (view functions whose ``cls`` is an ``APIView``: ``as_view()``
    results, ``@api_view`` functions, router-built ViewSet views) are exempt by
    ``login_not_required`` only when it marks the class's ``dispatch``, as Django documents for
    class-based views: ``@method_decorator(login_not_required, name="dispatch")``. Their view
    function's own ``login_required = False`` is ignored: DRF 3.16+ sets it on every view, and
    ``login_not_required(MyView.as_view())`` leaves the very same attribute, so the two cannot
    be told apart; reading it would exempt every DRF view. Such a marking therefore keeps the
    view protected (the safe way to be wrong); ``clerk_optional`` on the view function works.
    The rule does not depend on the DRF version (3.14/3.15 set no flag).
    """
    if _login_not_required(view_func):
        return True
    if getattr(view_func, EXEMPT_ATTRIBUTE, False):
        return True
    if is_preflight(request.META):
        return True
    exempt = state.exempt_paths
    return bool(exempt) and request.path_info in exempt


def _login_not_required(view_func: Callable[..., Any]) -> bool:
    """Whether the user exempted this view with ``login_not_required`` (see :func:`is_exempt`)."""
    drf_class = _drf_view_class(view_func)
    if drf_class is not None:
        return getattr(drf_class.dispatch, "login_required", True) is False
    return getattr(view_func, "login_required", True) is False


def _drf_view_class(view_func: Callable[..., Any]) -> type[Any] | None:
    """The ``APIView`` subclass a DRF view function was built from (its ``cls``), or ``None``."""
    cls = getattr(view_func, "cls", None)
    # No import of DRF: a view built from one of its classes means DRF is already loaded.
    drf_views = sys.modules.get("rest_framework.views")
    if drf_views is None or not isinstance(cls, type):
        return None
    return cls if issubclass(cls, drf_views.APIView) else None


class ClerkGuardMiddleware:
    """Verify the Clerk session token of every request and attach the result.

    Sync- and async-capable: under ASGI the token is verified on the event loop with
    :class:`~clerk_guard.AsyncGuard` (no thread hop); under WSGI with :class:`~clerk_guard.Guard`.

    In protect-all mode (``CLERK_GUARD_PROTECT_ALL = True``) a view without a verified session
    is answered with contract §5's JSON 401 (or 503 when keys cannot be loaded), never a redirect,
    unless it is exempt (see :func:`is_exempt`). Django REST framework views are covered too:
    DRF's blanket ``login_required = False`` on its view functions does not exempt them. CORS
    preflights are not verified in this mode: they pass with ``request.clerk = None``.

    :raises ImproperlyConfigured: at start-up, when the settings cannot work.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
            # An async process_view keeps the async handler from hopping to a thread for it.
            self.process_view = self._aprocess_view  # type: ignore[method-assign, assignment]
        try:
            # Fail at start-up, not at the first request.
            state.config  # noqa: B018
            state.protect_all  # noqa: B018
            state.exempt_paths  # noqa: B018
            state.user_factory  # noqa: B018
            conf.transport  # noqa: B018
            warm_up = conf.warm_up
        except ConfigurationError as exc:
            raise ImproperlyConfigured(f"clerk-guard: {exc}") from exc
        if warm_up:
            # With the sync guard in both modes: the async one needs a running loop, and the
            # key store is shared, so it starts warm too.
            state.warm_up()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        if self._skips(request):
            attach(request, None, None)
        else:
            authenticate(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self._skips(request):
            attach(request, None, None)
        else:
            await aauthenticate(request)
        # In async mode get_response is a coroutine function.
        return await cast("Awaitable[HttpResponseBase]", self.get_response(request))

    @staticmethod
    def _skips(request: HttpRequest) -> bool:
        """Protect-all mode leaves CORS preflights unverified (browsers send no credentials)."""
        return state.protect_all and is_preflight(request.META)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> HttpResponseBase | None:
        """In protect-all mode, refuse a non-exempt view when no session was verified."""
        if not state.protect_all or is_exempt(request, view_func):
            return None
        answer = refusal(request)
        return None if answer is None else to_response(answer)

    async def _aprocess_view(self, *args: Any) -> HttpResponseBase | None:
        # Verification already happened in __acall__: nothing here awaits.
        return ClerkGuardMiddleware.process_view(self, *args)
