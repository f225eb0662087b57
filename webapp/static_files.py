"""Static files through WhiteNoise, on the async request path.

WhiteNoise's own Django middleware is sync-only: under Daphne, Django would run every request
through one thread for it. This middleware is async and sync capable and lets WhiteNoise do the
work that matters (file table, compressed variants, ETag/Last-Modified, cache headers, immutable
hashed names after `collectstatic`); only the lookup-and-serve call sits here.

Two ways to run (KAFKA_DOJO_STATIC, see settings.py):
- `source` (the embedded default, nothing to build): files come from static/ through Django's
  finders, cached for a minute.
- `collected` (./scripts/run and scaled mode): `manage.py collectstatic` writes hashed,
  compressed copies to STATIC_ROOT; those are served with a year's cache and `immutable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class _WhiteNoiseSettings:
    """Django's settings as WhiteNoise reads them; serving from source (the finders), it does
    not look in STATIC_ROOT (which need not exist then)."""

    def __getattr__(self, name: str) -> Any:
        if name == "STATIC_ROOT" and getattr(settings, "WHITENOISE_USE_FINDERS", False):
            return None
        return getattr(settings, name)


class StaticFilesMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response=None, settings=_WhiteNoiseSettings())
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _lookup(self, request: HttpRequest) -> Any:
        if self.whitenoise.autorefresh:  # DEBUG: look on disk each time (new files appear)
            return self.whitenoise.find_file(request.path_info)
        return self.whitenoise.files.get(request.path_info)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        static_file = self._lookup(request)
        if static_file is not None:
            return self.whitenoise.serve(static_file, request)
        response: HttpResponseBase = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self.whitenoise.autorefresh:
            static_file = await sync_to_async(self._lookup, thread_sensitive=False)(request)
        else:
            static_file = self._lookup(request)  # a dict lookup: no I/O
        if static_file is not None:
            # Opens the file (stat results are cached); Django streams it off the loop.
            response: HttpResponseBase = self.whitenoise.serve(static_file, request)
            return response
        return await self.get_response(request)
