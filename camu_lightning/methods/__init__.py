"""Unlearning methods; a method exists when its module is imported here and it subclasses UnlearningMethod."""

from camu_lightning.methods.base import DivergenceError, UnlearningMethod
from camu_lightning.methods.camu import CaMU

__all__ = ["CaMU", "DivergenceError", "UnlearningMethod"]
