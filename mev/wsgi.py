"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mev.settings")
application = get_wsgi_application()

# Owner table pages are answered in front of Django's routing and DRF (see the module's docstring).
from mev.resources.contents_fastpath import wrap  # noqa: E402  (needs the apps loaded above)

application = wrap(application)
