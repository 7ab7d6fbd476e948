"""The stronger membership-inference attacks of metrics.md section 5, as torchmetrics metrics.

Each metric keeps per-row states (`add_state(..., dist_reduce_fx="cat")`, so torchmetrics gathers them across
ranks) plus each row's global `order`; `compute` sorts by it, so a seeded attack sees the rows of a one-process
run in the same order on any number of ranks. The attacks themselves are the functions below, with sklearn models.

F = D_f; N = the test rows whose label occurs in D_f (all of T in random removal, T_rm in class removal).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.svm import SVC
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from camu_lightning.gaps import ATTACK_KEYS  # the names rows are read by, torch-free (camu report)


def loss_lr_attack(forget_losses: np.ndarray, test_losses: np.ndarray, seed: int, splits: int = 5) -> float:
    """`mia_loss_lr` (SCRUB's MIA): logistic regression on the clipped per-sample loss, balanced by subsampling the
    larger side (seeded), 100 * mean accuracy over `splits` stratified 90/10 splits. About 50: not told apart."""
    rng = np.random.default_rng(seed)
    size = min(len(forget_losses), len(test_losses))
    if size < 2:  # no stratified split of one row per side
        return float("nan")
    forget = rng.choice(forget_losses, size, replace=False) if len(forget_losses) > size else forget_losses
    test = rng.choice(test_losses, size, replace=False) if len(test_losses) > size else test_losses
    features = np.clip(np.r_[forget, test], -100, 100).reshape(-1, 1)
    membership = np.r_[np.ones(size), np.zeros(size)]
    # 10 % held out; on sets so small that 10 % is under one row per class, the two rows a stratified split needs.
    held_out = 0.1 if 0.1 * 2 * size >= 2 else 2
    folds = StratifiedShuffleSplit(n_splits=splits, test_size=held_out, random_state=seed)
    scores = cross_val_score(LogisticRegression(), features, membership, cv=folds, scoring="accuracy")
    return 100 * float(np.mean(scores))


def svc_efficacy(shadow_members: np.ndarray, shadow_nonmembers: np.ndarray, forget: np.ndarray) -> float:
    """`mia_svc_efficacy` (Unlearn-Sparse's MIA-efficacy): an RBF SVC learns true-label confidence of D_r rows (1)
    against test rows (0); the score is the share (percent) of D_f it calls non-members. Higher: more forgotten."""
    features = np.r_[shadow_members, shadow_nonmembers].reshape(-1, 1)
    membership = np.r_[np.ones(len(shadow_members)), np.zeros(len(shadow_nonmembers))]
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(features, membership)
    return 100 * (1 - float(attack.predict(forget.reshape(-1, 1)).mean()))


def low_fpr_attack(forget_losses: np.ndarray, test_losses: np.ndarray) -> tuple[float, float]:
    """(`mia_auc`, `mia_tpr_at_1fpr`): the score -loss ranks F (positives) against N (negatives), unbalanced;
    AUC and the best true-positive rate at a false-positive rate of at most 1 %, both in percent."""
    membership = np.r_[np.ones(len(forget_losses)), np.zeros(len(test_losses))]
    score = -np.r_[forget_losses, test_losses]
    false_positive, true_positive, _ = roc_curve(membership, score, drop_intermediate=False)
    return 100 * float(roc_auc_score(membership, score)), 100 * float(true_positive[false_positive <= 0.01].max())


class _OrderedRows(Metric):
    """Per-row `value`, `role` and global `order`, concatenated across batches and ranks."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("value", "role", "order"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, value: Tensor, role: Tensor, order: Tensor) -> None:
        self.value.append(value.detach().double())
        self.role.append(role.to(torch.int64))
        self.order.append(order.to(torch.int64))

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(value, role) as numpy arrays, in global row order."""
        if isinstance(self.order, list) and not self.order:  # nothing seen (after a sync the states are tensors)
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        value, role, order = (dim_zero_cat(state).cpu() for state in (self.value, self.role, self.order))
        ranked = order.argsort()
        return value[ranked].numpy(), role[ranked].numpy()


class LossLRAttack(_OrderedRows):
    """`mia_loss_lr`; update with per-sample losses, role 1 for F and 0 for N."""

    def __init__(self, seed: int, splits: int = 5) -> None:
        super().__init__()
        if splits < 2:
            raise ValueError(f"splits must be >= 2, got {splits}")
        self.seed, self.splits = seed, splits

    def compute(self) -> Tensor:
        loss, role = self.rows()
        return torch.tensor(loss_lr_attack(loss[role == 1], loss[role == 0], self.seed, self.splits))


SHADOW_NONMEMBER, SHADOW_MEMBER, FORGET = range(3)


class SVCEfficacy(_OrderedRows):
    """`mia_svc_efficacy`; update with true-label confidences and roles SHADOW_NONMEMBER (all of T),
    SHADOW_MEMBER (the first min(|T|, |D_r|) rows of D_r) and FORGET (D_f)."""

    def compute(self) -> Tensor:
        confidence, role = self.rows()
        parts = [confidence[role == value] for value in (SHADOW_MEMBER, SHADOW_NONMEMBER, FORGET)]
        return torch.tensor(svc_efficacy(*parts))


class LowFPRAttack(_OrderedRows):
    """`mia_auc` and `mia_tpr_at_1fpr`; update with per-sample losses, role 1 for F and 0 for N."""

    def compute(self) -> dict[str, Tensor]:
        loss, role = self.rows()
        auc, tpr = low_fpr_attack(loss[role == 1], loss[role == 0])
        return {"mia_auc": torch.tensor(auc), "mia_tpr_at_1fpr": torch.tensor(tpr)}


class StrongerAttacks(torch.nn.Module):
    """The three attacks over one evaluation pass: routes each set's rows (remain, forget, test) to them.

    Args:
        seed: seeds `mia_loss_lr`'s subsampling and splits (the other two are deterministic).
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.loss_lr, self.svc, self.low_fpr = LossLRAttack(seed), SVCEfficacy(), LowFPRAttack()

    def update(
        self,
        set_name: str,
        logits: Tensor,
        labels: Tensor,
        order: Tensor,
        svc_shadow: Tensor | None = None,
        in_forget_classes: Tensor | None = None,
    ) -> None:
        """Args: order: each row's global order; svc_shadow: remain rows that are SVC shadow members;
        in_forget_classes: test rows of a removed class (class removal), which alone form N there."""
        logits = logits.float()
        loss = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        confidence = logits.softmax(dim=1).gather(1, labels[:, None])[:, 0]
        if set_name == "forget":
            for metric in (self.loss_lr, self.low_fpr):
                metric.update(loss, torch.ones_like(labels), order)
            self.svc.update(confidence, torch.full_like(labels, FORGET), order)
        elif set_name == "test":
            kept = in_forget_classes if in_forget_classes is not None else torch.ones_like(labels, dtype=torch.bool)
            for metric in (self.loss_lr, self.low_fpr):
                metric.update(loss[kept], torch.zeros_like(labels[kept]), order[kept])
            self.svc.update(confidence, torch.full_like(labels, SHADOW_NONMEMBER), order)
        elif svc_shadow is not None and bool(svc_shadow.any()):
            self.svc.update(
                confidence[svc_shadow], torch.full_like(labels[svc_shadow], SHADOW_MEMBER), order[svc_shadow]
            )

    def compute(self) -> dict[str, float]:
        results = {"mia_loss_lr": self.loss_lr.compute(), "mia_svc_efficacy": self.svc.compute()}
        results |= self.low_fpr.compute()
        return {key: float(results[key]) for key in ATTACK_KEYS}

    def reset(self) -> None:
        for metric in (self.loss_lr, self.svc, self.low_fpr):
            metric.reset()
