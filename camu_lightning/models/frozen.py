"""Frozen copies of a network: the original model as target, teacher or attack victim."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def full_precision(tensor: Tensor) -> Tensor:
    """float32 for half-precision outputs under mixed precision; float64 stays float64 (exactness checks)."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


class Frozen(nn.Module):
    """A copy that never trains: eval mode whatever `train()` is called with, no gradients, in no optimizer.

    The copy is held outside the module tree, so Lightning's `.train()` at fit start cannot switch a frozen ResNet's
    batch norm to batch statistics, and its check for submodules left in eval mode (a user's network handed over
    after `model.eval()`) is not set off by copies in eval mode on purpose. It still moves, casts and changes
    memory layout with its owner (`_apply`) and is saved and loaded under `<name>.network.` in the owner's
    state_dict, as a registered submodule would be.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "network", copy.deepcopy(network).requires_grad_(False).eval())

    def _apply(self, fn, recurse: bool = True) -> Frozen:  # noqa: ANN001 -- torch's own signature
        self.network._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        self.network.state_dict(destination=destination, prefix=f"{prefix}network.", keep_vars=keep_vars)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        inner = f"{prefix}network."
        own = {key.removeprefix(inner): value for key, value in state_dict.items() if key.startswith(inner)}
        missing, unexpected = args[-3], args[-2]  # (local_metadata, strict, missing_keys, unexpected_keys, errors)
        result = self.network.load_state_dict(own, strict=False)
        missing += [f"{inner}{key}" for key in result.missing_keys]
        unexpected += [f"{inner}{key}" for key in result.unexpected_keys]

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.network(x)


class FrozenEmbeddings:
    """Embeddings of a frozen network per input position, computed on first sight and reused every epoch.

    Exact (camu.md section 11): the frozen model and an input with a fixed position never change within a run.
    Batches that carry no `index` (inputs re-augmented each epoch) are always recomputed.
    """

    def __init__(self, frozen: Frozen) -> None:
        self.frozen = frozen
        self.values: dict[str, Tensor] = {}
        self.known: dict[str, Tensor] = {}

    def clear(self) -> None:
        self.values.clear()
        self.known.clear()

    def __call__(self, name: str, inputs: Tensor, index: Tensor | None) -> Tensor:
        if index is None:
            return full_precision(self.frozen(inputs)[1])
        values, known = self.values.get(name), self.known.get(name)
        if values is not None and int(index.max()) < len(known) and bool(known[index].all()):
            return values[index]
        embedding = full_precision(self.frozen(inputs)[1])
        size = int(index.max()) + 1
        if values is None or size > len(values):
            grown = embedding.new_zeros(
                (max(size, 2 * len(values) if values is not None else size), embedding.shape[1])
            )
            grown_known = torch.zeros(len(grown), dtype=torch.bool, device=embedding.device)
            if values is not None:
                grown[: len(values)], grown_known[: len(known)] = values, known
            values, known = grown, grown_known
        values[index], known[index] = embedding, True
        self.values[name], self.known[name] = values, known
        return embedding
