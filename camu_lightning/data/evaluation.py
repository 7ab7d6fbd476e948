"""The evaluation sets (D_r, D_f and the test set with the eval transform) and their loaders. Their batches also
carry the paper MIA's row roles (metrics.md section 2), so the attack reuses the logits of the accuracy pass
instead of running the model again."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from camu_lightning.data.attack_sets import attack_roles
from camu_lightning.data.datasets import ImageArrays
from camu_lightning.data.rows import ImageRows, PaddedEvalSampler, collate_batch
from camu_lightning.data.splits import ForgetSplit
from camu_lightning.data.transforms import InputPipeline

EVAL_SETS = ("remain", "forget", "test")


def evaluation_sets(
    arrays: ImageArrays, split: ForgetSplit, pipeline: InputPipeline, settings: dict[str, Any]
) -> dict[str, ImageRows]:
    """D_r, D_f and the test set (`settings`: the data module's hyperparameters), each row with its attack roles."""
    roles = attack_roles(
        split, len(arrays.y_test), settings["mia_attack_size"], settings["forget_repeat"], settings["split_seed"]
    )

    def rows(images: Tensor, labels: Tensor, positions: Tensor, set_name: str) -> ImageRows:
        columns = {"mia_role": roles[set_name][0], "mia_weight": roles[set_name][1]}
        if set_name == "test" and split.forget_classes:  # its presence marks class removal to the evaluation
            columns["in_forget_classes"] = torch.isin(labels, torch.tensor(split.forget_classes))
        if set_name == "remain":  # the stronger attacks' SVC learns from the first min(|T|, |D_r|) rows of D_r
            columns["svc_shadow"] = torch.arange(len(positions)) < min(len(arrays.y_test), len(positions))
        return ImageRows(images, labels, positions, pipeline.eval, columns, with_position=True)

    return {
        "remain": rows(arrays.x_train, arrays.y_train, torch.from_numpy(split.remain), "remain"),
        "forget": rows(arrays.x_train, arrays.y_train, torch.from_numpy(split.forget), "forget"),
        "test": rows(arrays.x_test, arrays.y_test, torch.arange(len(arrays.y_test)), "test"),
    }


def evaluation_loaders(
    sets: dict[str, ImageRows], batch_size: int, num_workers: int, trainer: L.Trainer | None
) -> list[DataLoader]:
    """One loader per set in the order of EVAL_SETS; under several devices each rank takes its padded share."""
    loaders = []
    for name in EVAL_SETS:
        dataset = sets[name]
        sampler = None
        if trainer is not None and trainer.world_size > 1:
            sampler = PaddedEvalSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank)
        # An own generator: a DataLoader iterator draws a seed from it, which must not come from the training
        # RNG, or a run's batches would depend on how often it validates.
        loaders.append(
            DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=sampler,
                collate_fn=collate_batch,
                num_workers=num_workers,
                generator=torch.Generator(),
            )
        )
    return loaders
