"""Dataset handlers."""

from ..api.v1alpha1 import Dataset
from .acceptance import register

register(Dataset)
