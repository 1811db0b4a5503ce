"""A minimal Django project that receives Moonsense and MOCO webhooks.

Run it (from the root of a checkout of the repository: hookshield is not on the
package index yet):

    python -m pip install -e '.[django]'
    export MOONSENSE_SECRET=moonsense_try_me MOCO_SECRET=0123456789abcdef0123456789abcdef
    cd examples/django_project
    python manage.py runserver 8000

Django's ``runserver`` is for trying it out.  To serve it as in production, with a
WSGI server, which the ``django`` extra does not install:

    python -m pip install gunicorn
    gunicorn webhooks_site.wsgi --bind 127.0.0.1:8000

and send it signed test deliveries, as the real senders would, from another shell:

    python -m hookshield send http://127.0.0.1:8000/hooks/moonsense/ \\
        --provider moonsense --event session.created --secret "$MOONSENSE_SECRET"
    python -m hookshield send http://127.0.0.1:8000/hooks/moco/ \\
        --provider moco --event activity.create --secret "$MOCO_SECRET"
"""

import os
import secrets

# Nothing here signs sessions or cookies; set DJANGO_SECRET_KEY in a real project.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
ROOT_URLCONF = "webhooks_site.urls"
WSGI_APPLICATION = "webhooks_site.wsgi.application"

MIDDLEWARE = [
    # First, so that webhook endpoints are answered before CSRF and sessions.
    "hookshield.django.WebhookMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

# Path -> dotted path of a WebhookHandler; served by WebhookMiddleware.
HOOKSHIELD_ENDPOINTS = {"/hooks/moonsense/": "webhooks_site.receivers.moonsense"}
