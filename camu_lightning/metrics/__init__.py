"""Accuracy on named slices and membership-inference attacks."""

from camu_lightning.metrics.accuracy import CLASS_KEYS, RANDOM_KEYS, SliceAccuracies
from camu_lightning.metrics.attacks import ATTACK_KEYS, StrongerAttacks
from camu_lightning.metrics.mia import PaperMIA, paper_mia, sorted_softmax

__all__ = [
    "ATTACK_KEYS",
    "CLASS_KEYS",
    "PaperMIA",
    "RANDOM_KEYS",
    "SliceAccuracies",
    "StrongerAttacks",
    "paper_mia",
    "sorted_softmax",
]
