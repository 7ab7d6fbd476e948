"""The paper's membership-inference attack (metrics.md section 2; official `train.py: train_attack_model`).

A gradient-boosted classifier learns to tell the evaluated model's outputs on members (samples of S) from
its outputs on non-members (test samples), with each row's softmax sorted ascending as features. The score is
its accuracy on a fresh mixture of forget rows (members) and other test rows (non-members): about 50 when
forget rows look like held-out data. `PaperMIA` gathers the rows as a torchmetrics Metric, like the other attacks.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat
from xgboost import XGBClassifier

from camu_lightning.data.attack_sets import EVAL_MEMBER, EVAL_NONMEMBER, TRAIN_MEMBER, TRAIN_NONMEMBER


def sorted_softmax(logits: Tensor) -> Tensor:
    """softmax over classes in float32, sorted ascending within each row (the attack's C features)."""
    return torch.softmax(logits.float(), dim=1).sort(dim=1).values


def paper_mia(
    train_members: Tensor, train_nonmembers: Tensor, eval_members: Tensor, eval_nonmembers: Tensor, seed: int
) -> float:
    """Attack accuracy (percent) on eval_members (label 1) and eval_nonmembers (label 0).

    Every argument holds feature rows from `sorted_softmax`. As in the official code, 1 % of the attack's
    training rows is split off (seeded) and left unused.
    """
    features = torch.cat([train_members, train_nonmembers]).numpy()
    membership = np.r_[np.ones(len(train_members)), np.zeros(len(train_nonmembers))]
    fit_features, _, fit_membership, _ = train_test_split(
        features, membership, test_size=0.01, shuffle=True, random_state=seed
    )
    attack = XGBClassifier(n_estimators=100, objective="binary:logistic", booster="gbtree", random_state=seed)
    attack.fit(fit_features, fit_membership)
    eval_features = torch.cat([eval_members, eval_nonmembers]).numpy()
    eval_membership = np.r_[np.ones(len(eval_members)), np.zeros(len(eval_nonmembers))]
    return 100 * float(accuracy_score(eval_membership, attack.predict(eval_features)))


class PaperMIA(Metric):
    """`mia`: update with each batch's attack rows (features from `sorted_softmax`, their role, how many copies
    of each the attack set holds, and their global order); compute fits and scores the attack over every rank's
    rows in global row order, so the value is the same on any number of ranks (NaN when no row was seen)."""

    full_state_update = False

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        for name in ("features", "role", "copies", "order"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, features: Tensor, role: Tensor, copies: Tensor, order: Tensor) -> None:
        self.features.append(features.float())
        for state, value in ((self.role, role), (self.copies, copies), (self.order, order)):
            state.append(value.to(torch.int64))

    def compute(self) -> Tensor:
        if isinstance(self.order, list) and not self.order:  # nothing seen (after a sync the states are tensors)
            return torch.tensor(float("nan"), dtype=torch.float64)
        columns = [dim_zero_cat(state).cpu() for state in (self.features, self.role, self.copies, self.order)]
        features, roles, copies = (column[columns[3].argsort()] for column in columns[:3])
        rows = {
            role: features[roles == role].repeat_interleave(copies[roles == role], dim=0)
            for role in (TRAIN_MEMBER, TRAIN_NONMEMBER, EVAL_MEMBER, EVAL_NONMEMBER)
        }
        score = paper_mia(rows[TRAIN_MEMBER], rows[TRAIN_NONMEMBER], rows[EVAL_MEMBER], rows[EVAL_NONMEMBER], self.seed)
        return torch.tensor(score, dtype=torch.float64)
