"""TrainingJob handlers."""

from ..api.v1alpha1 import TrainingJob
from .acceptance import register

register(TrainingJob)
