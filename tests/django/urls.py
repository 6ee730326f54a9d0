"""URLs for the Django tests."""

from __future__ import annotations

from django.urls import include, path

from clerk_guard.django.decorators import clerk_optional
from tests.django import views
from tests.django.settings import HAS_DRF

urlpatterns = [
    path("plain", views.plain),
    path("aplain", views.aplain),
    path("open", views.open_view),
    path("aopen", views.aopen_view),
    path("health", views.plain),
    path("required", views.required),
    path("arequired", views.arequired),
    path("admin", views.admin),
    path("aadmin", views.aadmin),
    path("role", views.role),
    path("permission", views.permission),
    path("apermission", views.apermission),
    path("optional", views.optional),
    path("aoptional", views.aoptional),
    path("auser", views.auser),
]

if HAS_DRF:
    from tests.django import drf_views

    urlpatterns += [
        path("api/me", drf_views.Me.as_view()),
        path("api/admin", drf_views.Admin.as_view()),
        path("api/invoices", drf_views.Invoices.as_view()),
        path("api/fallback", drf_views.Fallback.as_view()),
        path("api/plain", drf_views.Plain.as_view()),
        path("api/hello", drf_views.hello),
        path("api/public-plain", drf_views.PublicPlain.as_view()),
        path("api/optional-plain", clerk_optional(drf_views.Plain.as_view())),
        path("api/optional-hello", drf_views.optional_hello),
        # login_not_required on the view function: not told apart from DRF's own flag.
        path("api/marked-plain", views.login_not_required(drf_views.Plain.as_view())),
        path("api/", include(drf_views.router.urls)),
    ]
