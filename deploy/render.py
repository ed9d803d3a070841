"""Render deploy/nginx-site.conf.template: `python deploy/render.py > /etc/nginx/sites-available/mev`.

Only ${MEV_...} placeholders are replaced (nginx's own $host etc. stay); a missing value is an
error, not an empty string, so a broken site is never written.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx-site.conf.template")
DEFAULTS = {
    "MEV_NGINX_PORT": "80",
    "MEV_GUNICORN_SOCKET": "/run/mev/gunicorn.sock",
    "MEV_NGINX_MAX_BODY": "2g",
    "MEV_STATIC_ROOT": "/srv/webmev/data/static",
    "MEV_MEDIA_ROOT": "/srv/webmev/data/files",
}
_PLACEHOLDER = re.compile(r"\$\{(MEV_[A-Z0-9_]+)\}")


def render_site(values: Mapping[str, str]) -> str:
    merged = {**DEFAULTS, **{k: v for k, v in values.items() if k.startswith("MEV_")}}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not merged.get(name):
            raise KeyError(f"{name} has no value")
        return merged[name]

    return _PLACEHOLDER.sub(substitute, TEMPLATE.read_text())


if __name__ == "__main__":
    try:
        sys.stdout.write(render_site(os.environ))
    except KeyError as exc:
        sys.exit(f"render.py: {exc.args[0]}")
