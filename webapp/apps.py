from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig


class WebappConfig(AppConfig):
    name = "webapp"
    verbose_name = "Kafka Dojo web app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # kombu's filesystem transport and the file result backend need their folders.
        for folder in settings.DOJO_CELERY_DIRS:
            Path(folder).mkdir(parents=True, exist_ok=True)
