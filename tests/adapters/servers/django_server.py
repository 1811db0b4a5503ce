"""Django, served by gunicorn: settings, URLconf and WSGI app in one module.

The senders' endpoints come from ``WebhookMiddleware``; the other two from URLs.
"""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application
from django.urls import path

from hookshield.django import webhook_view

from .common import BACKGROUND, HANDLERS, SMALL

SECRET_KEY = "adapter-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
ROOT_URLCONF = __name__
MIDDLEWARE = [
    "hookshield.django.WebhookMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
HOOKSHIELD_ENDPOINTS: dict[str, object] = {
    f"/hooks/{sender}": handler for sender, handler in HANDLERS.items()
}
# A handler may be named by its dotted path, too.
HOOKSHIELD_ENDPOINTS["/hooks/mindpeeker"] = "tests.adapters.servers.common.mindpeeker"

urlpatterns = [
    path("hooks/small", webhook_view(SMALL)),
    path("hooks/background", webhook_view(BACKGROUND, background=True)),
]

application = get_wsgi_application()
