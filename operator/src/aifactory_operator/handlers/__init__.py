"""kopf handlers: thin shells that parse, observe, plan, apply and report."""

from ..settings import load_settings
from . import admission_control, aifactory, dataset, indexes, kopf_settings, training, trainingjob, webhook

# Admission handlers only where the webhook is served: kopf refuses to start with handlers and no
# server (AIFACTORY_WEBHOOK=off, e.g. an operator outside a remote cluster).
if admission_control.WebhookSettings.from_settings(load_settings()).enabled:
    webhook.register()

__all__ = [
    "admission_control",
    "aifactory",
    "dataset",
    "indexes",
    "kopf_settings",
    "training",
    "trainingjob",
    "webhook",
]
