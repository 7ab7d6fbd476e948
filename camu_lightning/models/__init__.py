"""Networks whose forward returns (logits, embedding), and the wrapper that makes any classifier one."""

from camu_lightning.models.cnn import CNN
from camu_lightning.models.embedding import OutputAt, WithEmbedding, as_network, reinitialised
from camu_lightning.models.frozen import Frozen, FrozenEmbeddings, full_precision
from camu_lightning.models.resnet import ResNet18

__all__ = [
    "CNN",
    "Frozen",
    "FrozenEmbeddings",
    "full_precision",
    "OutputAt",
    "ResNet18",
    "WithEmbedding",
    "as_network",
    "reinitialised",
]
