"""ModelEndpoint handlers."""

from ..api.v1alpha1 import ModelEndpoint
from .acceptance import register

register(ModelEndpoint)
