from django.apps import AppConfig


class WorkshopsConfig(AppConfig):
    name = "webapp.workshops"
    label = "workshops"
    verbose_name = "Workshops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webapp.engine_host.signals import play_finished
        from webapp.workshops.consumers import reveal_played

        # A drill poll's reveal ends when its play does, even with nobody waiting for it.
        play_finished.connect(reveal_played, dispatch_uid="workshops.reveal_played")
