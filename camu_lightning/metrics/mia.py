"""The paper's membership-inference attack (metrics.md section 2; official `train.py: train_attack_model`).

A gradient-boosted classifier learns to tell the evaluated model's outputs on members (samples of S) from
its outputs on non-members (test samples), with each row's softmax sorted ascending as features. The score is
its accuracy on a fresh mixture of forget rows (members) and other test rows (non-members): about 50 when
forget rows look like held-out data.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from torch import Tensor
from xgboost import XGBClassifier


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
