"""The WSGI application, for a WSGI server such as gunicorn.

``python -m pip install gunicorn`` (the ``django`` extra does not install it), then
``gunicorn webhooks_site.wsgi`` from ``examples/django_project``.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_site.settings")
application = get_wsgi_application()
