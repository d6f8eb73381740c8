"""kopf handlers: thin shells that parse, observe, plan, apply and report."""

from . import aifactory, dataset, modelendpoint, settings, trainingjob

__all__ = ["aifactory", "dataset", "modelendpoint", "settings", "trainingjob"]
