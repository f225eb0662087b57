"""The host's fragments rendered without number localization.

Every number a Django template prints goes through `django.utils.formats.localize`, which
asks for the active language (asgiref locals, a lazy settings lookup) and the locale's
separators for each one. The stage prints hundreds (offsets, coordinates, sizes) on every
state version, and profiling the engine-host worker under the room benchmark (py-spy during
`scripts.bench.scaled`) put localization at about 40 % of rendering. The site speaks en-us
with no thousand separator, where localized and plain numbers are the same text, so the
host renders with localization off (`Context(use_l10n=False)`): same HTML (tested), about
half the CPU per render.
"""

from __future__ import annotations

from typing import Any

from django.template import Context
from django.template.loader import get_template


def render_to_string(template_name: str, context: dict[str, Any] | None = None) -> str:
    """Django's `render_to_string` (no request) with numbers printed as Python prints them."""
    template = get_template(template_name)
    engine = template.backend.engine  # type: ignore[attr-defined]
    return str(
        template.template.render(  # type: ignore[attr-defined]
            Context(context or {}, autoescape=engine.autoescape, use_l10n=False)
        )
    )
