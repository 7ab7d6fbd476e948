"""Passes over a data set outside the training loop: gradient sums without a step (SalUn's saliency mask, SSD's
importances) and error rates (SCRUB+R's rewind)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from camu_lightning.metrics.accuracy import accuracy_counter, error_percent_of


def summed_gradients(
    network: nn.Module,
    batches: Iterable[dict[str, Tensor]],
    loss: Callable[[Tensor, Tensor], Tensor],
    squared: bool = False,
) -> tuple[dict[str, Tensor], int]:
    """(sum over batches of each parameter's gradient of `loss(logits, labels)`, or of its square; the batch count).

    The network's mode is the caller's (both references use eval mode). Runs with gradients even inside Lightning's
    inference mode; leaves no gradient behind.
    """
    device = next(network.parameters()).device
    sums = {name: torch.zeros_like(parameter) for name, parameter in network.named_parameters()}
    count = 0
    with torch.inference_mode(False), torch.enable_grad():
        for batch in batches:
            network.zero_grad(set_to_none=True)
            logits = network(batch["x"].to(device, non_blocking=True))[0]
            loss(logits.float(), batch["y"].to(device, non_blocking=True)).backward()
            for name, parameter in network.named_parameters():
                if parameter.grad is not None:
                    sums[name] += parameter.grad.square() if squared else parameter.grad
            count += 1
    network.zero_grad(set_to_none=True)
    return sums, count


@torch.no_grad()
def error_percent(network: nn.Module, batches: Iterable[dict[str, Tensor]], classes: Tensor | None = None) -> float:
    """Misclassified rows in percent, in eval mode (the mode is restored after); only rows whose label is in
    `classes` when given."""
    device, was_training = next(network.parameters()).device, network.training
    network.eval()
    counter = None
    for batch in batches:
        labels = batch["y"].to(device, non_blocking=True)
        kept = (
            torch.isin(labels, classes.to(device)) if classes is not None else torch.ones_like(labels, dtype=torch.bool)
        )
        if kept.any():
            logits = network(batch["x"].to(device, non_blocking=True)[kept])[0]
            counter = counter or accuracy_counter(logits.shape[1], device)
            counter.update(logits.argmax(1), labels[kept])
    network.train(was_training)
    return error_percent_of(counter) if counter is not None else float("nan")
