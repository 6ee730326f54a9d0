"""Routes of the example (contract §8)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("public", views.public),
    path("me", views.me),
    path("admin", views.admin),
    path("health", views.health),
]
