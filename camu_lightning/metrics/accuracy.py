"""Accuracy, counted one way: torchmetrics' micro `MulticlassAccuracy` (its `tp` the correct rows, its `fn` the
wrong ones). The run's slices of metrics.md section 1 (synced across ranks) read its float32 ratio; the passes that
need the exact rate (SCRUB+R's rewind, the relearning curve, `camu score`) read it in float64."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

RANDOM_KEYS = ("acc_remain", "acc_forget", "acc_test")
CLASS_KEYS = (*RANDOM_KEYS, "acc_test_remain", "acc_test_forget")


class SliceAccuracies(nn.Module):
    """acc_remain, acc_forget, acc_test and, in class removal, acc_test_remain / acc_test_forget (percent).

    The test set is passed once; its rows are routed to the test_remain or test_forget slice by whether their
    label is a removed class. Class removal is known from the data: test rows that carry `in_forget_classes`.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.slices = nn.ModuleDict(
            {key: MulticlassAccuracy(num_classes=num_classes, average="micro") for key in CLASS_KEYS}
        )
        self.class_removal = False

    def update(self, set_name: str, logits: Tensor, labels: Tensor, in_forget_classes: Tensor | None = None) -> None:
        """Args: set_name: remain, forget or test; in_forget_classes: per test row, whether its class is removed."""
        if set_name == "test" and in_forget_classes is not None:
            self.class_removal = True
        if len(labels) == 0:  # a batch of padding rows only (distributed evaluation)
            return
        predictions = logits.argmax(dim=1)
        self.slices[f"acc_{set_name}"].update(predictions, labels)
        if set_name == "test" and in_forget_classes is not None:
            for key, rows in (("acc_test_forget", in_forget_classes), ("acc_test_remain", ~in_forget_classes)):
                if rows.any():
                    self.slices[key].update(predictions[rows], labels[rows])

    def compute(self) -> dict[str, float]:
        keys = CLASS_KEYS if self.class_removal else RANDOM_KEYS
        return {key: 100 * float(self.slices[key].compute()) for key in keys}

    def reset(self) -> None:
        for metric in self.slices.values():
            metric.reset()
        self.class_removal = False


def accuracy_counter(num_classes: int, device: torch.device | str = "cpu") -> MulticlassAccuracy:
    """A micro accuracy in float64: its `compute()` is correct / rows exactly rounded."""
    return MulticlassAccuracy(num_classes=num_classes, average="micro").set_dtype(torch.float64).to(device)


def error_percent_of(counter: MulticlassAccuracy) -> float:
    """100 * wrong / rows from a counter's counts; NaN for no rows."""
    correct, wrong = int(counter.tp.sum()), int(counter.fn.sum())
    return 100.0 * wrong / (correct + wrong) if correct + wrong else float("nan")
