"""kopf handlers: thin shells that parse, observe, plan, apply and report."""

from . import admission_control, aifactory, dataset, indexes, settings, training, trainingjob, webhook

webhook.register()

__all__ = [
    "admission_control",
    "aifactory",
    "dataset",
    "indexes",
    "settings",
    "training",
    "trainingjob",
    "webhook",
]
