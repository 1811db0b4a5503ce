"""MOCO is served by a view of our own; Moonsense by the middleware (see settings)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from hookshield import Delivery
from hookshield.django import verified

from .receivers import moco


@verified(moco)
def moco_hook(request: HttpRequest, delivery: Delivery) -> JsonResponse:
    """Runs only for a verified MOCO delivery seen for the first time."""
    for event in delivery.events:
        print("moco", event.type)
    return JsonResponse({"ok": True, "events": len(delivery.events)})


urlpatterns = [path("hooks/moco/", moco_hook)]
