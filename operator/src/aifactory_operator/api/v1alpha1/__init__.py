"""aifactory.dev/v1alpha1: the four kinds of the sovereign AI factory."""

from .aifactory import AIFactory
from .common import Condition, Resource
from .dataset import Dataset
from .modelendpoint import ModelEndpoint
from .trainingjob import TrainingJob

KINDS: tuple[type[Resource], ...] = (AIFactory, Dataset, TrainingJob, ModelEndpoint)

__all__ = ["KINDS", "AIFactory", "Condition", "Dataset", "ModelEndpoint", "Resource", "TrainingJob"]
