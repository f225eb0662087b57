from django.apps import AppConfig


class DrillsConfig(AppConfig):
    name = "lessons.drills"
    label = "drills"
    verbose_name = "Drills, quizzes and spaced review"
    default_auto_field = "django.db.models.BigAutoField"
