"""kopf handlers: thin shells that parse, observe, plan, apply and report."""

from . import aifactory, dataset, indexes, settings, training, trainingjob

__all__ = ["aifactory", "dataset", "indexes", "settings", "training", "trainingjob"]
