"""Counterfactual tuples (x_f, y_f, x_cf, y_cf), built once per run (camu.md section 3, official `prepare.py`).

Each forget sample is paired with a distinct sample of S by shuffling both lists independently. The
counterfactual input is that remain sample plus uniform noise, x_cf = x_s + m with m ~ U[0, 1) per element,
added after scaling/normalisation and never clamped. Its label differs from y_f by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from camu_lightning.data.splits import LABEL_STREAM, MASK_STREAM, PAIRING_STREAM, seeded_rng

LabelRule = Literal["keep_remain", "uniform"]
LABEL_RULES = ("keep_remain", "uniform")


@dataclass(frozen=True)
class CounterfactualTuples:
    """Tuple i pairs training sample `forget_index[i]` with the noised view of `sample_index[i]`."""

    forget_index: Tensor
    sample_index: Tensor
    x_forget: Tensor
    y_forget: Tensor
    x_counterfactual: Tensor
    y_counterfactual: Tensor

    def __len__(self) -> int:
        return len(self.forget_index)


def counterfactual_labels(
    y_forget: Tensor, y_sample: Tensor, num_classes: int, rule: LabelRule, rng: np.random.Generator
) -> Tensor:
    """`keep_remain`: y_s unless it equals y_f, then uniform over the other classes; `uniform`: always the latter.

    A uniform draw over {0..C-1} minus {y_f} is r ~ U{0..C-2}, shifted up by one where r >= y_f.
    """
    if rule not in LABEL_RULES:
        raise ValueError(f"unknown data.cf_label_rule '{rule}'; choose from: {', '.join(LABEL_RULES)}")
    draw = torch.from_numpy(rng.integers(0, num_classes - 1, size=len(y_forget)))
    other_class = draw + (draw >= y_forget).long()
    if rule == "uniform":
        return other_class
    return torch.where(y_sample == y_forget, other_class, y_sample)


def build_tuples(
    forget: np.ndarray,
    sample: np.ndarray,
    labels: Tensor,
    view: Callable[[Tensor], Tensor],
    num_classes: int,
    rule: LabelRule,
    seed: int,
) -> CounterfactualTuples:
    """Pair D_f^rep with S and noise the remain side.

    Args:
        forget: D_f^rep, training indices (repeated where forget_repeat > 1).
        sample: S, training indices, as many as `forget`.
        labels: all training labels.
        view: training indices to model inputs; called once here, so augmented views are frozen for all epochs.
    """
    assert len(forget) == len(sample), "S must be as large as the repeated forget set"
    pairing = seeded_rng(seed, PAIRING_STREAM)
    forget_index = torch.from_numpy(pairing.permutation(forget))
    sample_index = torch.from_numpy(pairing.permutation(sample))
    mask_generator = torch.Generator().manual_seed(int(seeded_rng(seed, MASK_STREAM).integers(2**62)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seeded_rng(seed, MASK_STREAM).integers(2**62)) + 1)
        x_forget, x_sample = view(forget_index), view(sample_index)
    mask = torch.rand(x_sample.shape, generator=mask_generator, dtype=x_sample.dtype)
    y_forget, y_sample = labels[forget_index], labels[sample_index]
    y_counterfactual = counterfactual_labels(y_forget, y_sample, num_classes, rule, seeded_rng(seed, LABEL_STREAM))
    return CounterfactualTuples(forget_index, sample_index, x_forget, y_forget, x_sample + mask, y_counterfactual)
