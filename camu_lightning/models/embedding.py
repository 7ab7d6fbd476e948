"""Any classifier as the suite's network: a module returning logits, seen as one returning (logits, embedding).

Every method reads `network(x)` as (logits, embedding); CaMU aligns the embedding. A user's model (torchvision's
`resnet18(num_classes=10)`, an MLP, their own) returns logits only, so `WithEmbedding` reads the representation
with a forward hook while the model runs, without rewriting the model: by default the input of its last
`nn.Linear` (the features the classifier head sees), or the output of a layer the user names.
"""

from __future__ import annotations

import copy
import hashlib

from torch import Tensor, nn


def last_linear(classifier: nn.Module) -> str:
    """The name of the last `nn.Linear` registered in the classifier (its head, for the usual layouts)."""
    names = [name for name, module in classifier.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(
            f"{type(classifier).__name__} has no nn.Linear: name the layer whose output is the representation, "
            "WithEmbedding(model, layer=...)"
        )
    return names[-1]


class WithEmbedding(nn.Module):
    """A logits-returning classifier whose forward returns (logits, embedding).

    Args:
        classifier: the user's model; its forward returns the logits.
        layer: the dotted name of the module whose output is the embedding (e.g. `avgpool`, `layer4`); None: the
            input of the last `nn.Linear`.
    """

    returns_embedding = True

    def __init__(self, classifier: nn.Module, layer: str | None = None) -> None:
        super().__init__()
        self.classifier = classifier
        self.layer = layer
        try:
            classifier.get_submodule(layer if layer is not None else last_linear(classifier))
        except AttributeError as error:
            raise ValueError(f"{type(classifier).__name__} has no layer {layer!r}: {error}") from None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        seen: list[Tensor] = []
        if self.layer is None:  # the head's input
            module = self.classifier.get_submodule(last_linear(self.classifier))
            handle = module.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
        else:
            module = self.classifier.get_submodule(self.layer)
            handle = module.register_forward_hook(lambda _, args, output: seen.append(output))
        try:  # a hook per call, removed at once: copies of the network (frozen originals) carry none
            logits = self.classifier(x)
        finally:
            handle.remove()
        if not seen:
            raise RuntimeError(f"{type(self.classifier).__name__}'s forward never ran layer {self.layer!r}")
        return logits, seen[-1].flatten(1)


class OutputAt(nn.Module):
    """One element of the output before it: `nn.Sequential(model, OutputAt(0))` is a model whose forward returns
    the logits where `model`'s returns a tuple (logits, aux, ...)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, output: tuple[Tensor, ...]) -> Tensor:
        return output[self.index]


def as_network(model: nn.Module, layer: str | None = None) -> nn.Module:
    """The model itself if it returns (logits, embedding) already (the suite's CNN and ResNet18, a WithEmbedding),
    else the model wrapped in WithEmbedding."""
    return model if getattr(model, "returns_embedding", False) else WithEmbedding(model, layer)


def reinitialised(network: nn.Module) -> nn.Module:
    """A copy of the network with fresh parameters (each submodule's own `reset_parameters`), drawn from the global
    RNG: what Retrain and SISA start from when they are given a trained model rather than its class."""
    fresh = copy.deepcopy(network)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
            module.reset_parameters()
    return fresh


def layout_digest(network: nn.Module) -> str:
    """A digest of the names and shapes of the network's tensors: its architecture, not its weights."""
    layout = ";".join(f"{name}:{tuple(value.shape)}" for name, value in network.state_dict().items())
    return hashlib.sha256(layout.encode()).hexdigest()[:20]
