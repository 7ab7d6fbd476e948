"""The paper MIA's rows (metrics.md section 2) as per-row roles of the evaluation sets.

Attack training: members are the first n_att samples of S after a seeded shuffle (found in D_r, which holds S),
non-members T[0:n_att]. Attack evaluation: members D_f^rep (each D_f row counted forget_repeat times),
non-members T[n_att : n_att + n_ne]. n_att = min(N, |S|, |T| // 2), n_ne = min(|D_f^rep|, |T| - n_att).
Marking rows instead of building extra sets lets the attack reuse the logits of the accuracy pass.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from camu_lightning.data.splits import ATTACK_STREAM, ForgetSplit, seeded_rng

# Rows with role NONE take no part in the attack.
NONE, TRAIN_MEMBER, TRAIN_NONMEMBER, EVAL_MEMBER, EVAL_NONMEMBER = range(5)


def attack_roles(
    split: ForgetSplit, num_test: int, attack_size: int, forget_repeat: int, seed: int
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per evaluation set (remain, forget, test): each row's role and how many times it counts."""
    attack_size = min(attack_size, len(split.sample), num_test // 2)
    eval_nonmembers = min(forget_repeat * len(split.forget), num_test - attack_size)
    members = seeded_rng(seed, ATTACK_STREAM).permutation(split.sample)[:attack_size]
    remain_copies = np.bincount(np.searchsorted(split.remain, members), minlength=len(split.remain))
    test_position = np.arange(num_test)
    test_role = np.select(
        [test_position < attack_size, test_position < attack_size + eval_nonmembers],
        [TRAIN_NONMEMBER, EVAL_NONMEMBER],
        NONE,
    )
    return {
        "remain": _columns(np.where(remain_copies > 0, TRAIN_MEMBER, NONE), remain_copies),
        "forget": _columns(np.full(len(split.forget), EVAL_MEMBER), np.full(len(split.forget), forget_repeat)),
        "test": _columns(test_role, np.ones(num_test, dtype=np.int64)),
    }


def _columns(role: np.ndarray, copies: np.ndarray) -> tuple[Tensor, Tensor]:
    return torch.from_numpy(role.astype(np.int8)), torch.from_numpy(copies.astype(np.int64))
