from django.apps import AppConfig


class LessonsConfig(AppConfig):
    name = "lessons"
    verbose_name = "Lessons"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from lessons import progress
        from lessons.catalogue import get_catalogue

        # Every lesson and the glossary are validated at startup: a bad file stops the app
        # with an error that names the file and the field.
        get_catalogue()
        user_logged_in.connect(progress.on_user_logged_in, dispatch_uid="lessons-claim-progress")
