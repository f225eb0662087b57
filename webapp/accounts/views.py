"""Sign up, log in, log out (Django's auth). Signing up or logging in carries the visitor's
anonymous progress (drill attempts, review cards, quiz rounds, and any other app's rows kept by
session key with a nullable user, such as lesson progress) over to the account."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from lessons.drills.progress import claim_session

logger = logging.getLogger(__name__)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/progress/"


def _log_in_keeping_progress(request: HttpRequest, user: object) -> dict[str, int]:
    """Log in and move this session's anonymous rows to the user. Django's login() gives the
    session a new key, so the old key is read first."""
    anonymous_key = request.session.session_key or ""
    login(request, user)  # type: ignore[arg-type]
    moved = claim_session(anonymous_key, user)
    if moved:
        logger.info("carried anonymous progress over to user %s: %s", user, moved)
    return moved


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        moved = _log_in_keeping_progress(request, user)
        count = sum(moved.values())
        messages.success(
            request,
            f"Welcome, {user.get_username()}."
            + (
                f" Your progress so far ({count} records) is now saved to your account."
                if count
                else ""
            ),
        )
        return redirect(_next_url(request))
    status = 400 if request.method == "POST" else 200
    return render(
        request, "accounts/signup.html", {"form": form, "next": _next_url(request)}, status=status
    )


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        _log_in_keeping_progress(request, form.get_user())
        return redirect(_next_url(request))
    status = 400 if request.method == "POST" else 200
    return render(
        request, "accounts/login.html", {"form": form, "next": _next_url(request)}, status=status
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are logged out.")
    return redirect("home")
