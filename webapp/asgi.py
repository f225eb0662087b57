"""ASGI entry point: HTTP through Django, WebSockets through Channels (Daphne serves both)."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these modules touch models and settings.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from webapp.engine_host.fanout import capture_server_send  # noqa: E402
from webapp.routing import websocket_urlpatterns  # noqa: E402

# /static/ is served by WhiteNoise in the middleware stack (webapp/static_files.py).
http_application = django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_application,
        # capture_server_send: the fan-out writes prepared frames to Daphne's sockets.
        "websocket": capture_server_send(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# What startup loaded (Django, the apps, templates, the engine's modules) lives as long as the
# process: moved out of the collector's generations, a full collection no longer walks it
# again (what a replay or a checkpoint allocates is what it walks). Garbage first, not frozen.
gc.collect()
gc.freeze()
