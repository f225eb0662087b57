"""The Django project: settings, ASGI, the engine host, WebSocket consumers, Celery app."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
