"""Accuracy on named slices and membership-inference attacks."""

from camu_lightning.metrics.accuracy import CLASS_KEYS, RANDOM_KEYS, SliceAccuracies
from camu_lightning.metrics.mia import paper_mia, sorted_softmax

__all__ = ["CLASS_KEYS", "RANDOM_KEYS", "SliceAccuracies", "paper_mia", "sorted_softmax"]
