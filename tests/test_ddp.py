"""CaMU under Lightning's DDP on two CPU processes (gloo): identical weights, sharded tuples, exact metrics."""

from __future__ import annotations

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy

from tests.test_camu import make_camu


class RankChecks(L.Callback):
    """Runs inside every rank: gathers what each rank saw and trained, and asserts on it."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.seen: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen += batch["counterfactual"]["index"].tolist()

    def on_train_epoch_end(self, trainer, pl_module):
        per_rank = [None, None]
        dist.all_gather_object(per_rank, self.seen)
        assert not set(per_rank[0]) & set(per_rank[1]), "a tuple went to both ranks"
        assert sorted(per_rank[0] + per_rank[1]) == list(range(len(trainer.datamodule.split.forget)))

    def on_train_end(self, trainer, pl_module):
        weights = torch.cat([p.detach().flatten() for p in pl_module.network.parameters()])
        per_rank = [torch.zeros_like(weights), torch.zeros_like(weights)]
        dist.all_gather(per_rank, weights)
        assert torch.equal(per_rank[0], per_rank[1]), "the ranks' weights differ"

    def on_test_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            torch.save(pl_module.evaluation["test"], trainer.default_root_dir + "/metrics.pt")


def test_camu_under_ddp_keeps_ranks_in_step_shards_tuples_and_counts_each_row_once(tiny_datamodule, tmp_path) -> None:
    datamodule, method = tiny_datamodule, make_camu(batch_size=3)
    # find_unused_parameters: CaMU's representation step never reaches the head (fc2); with zero gradients instead
    # of none, Adam's weight decay would move the head in that step and change the method.
    strategy = DDPStrategy(start_method="spawn", find_unused_parameters=True)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=strategy,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=[RankChecks()],
    )
    trainer.fit(method, datamodule)
    trainer.test(method, datamodule)
    distributed = torch.load(tmp_path / "metrics.pt", weights_only=True)
    # The same weights evaluated in one process: each accuracy must match exactly (no padded row counted).
    single = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    single.test(method, datamodule, verbose=False)
    for key in ("acc_remain", "acc_forget", "acc_test"):
        assert distributed[key] == method.evaluation["test"][key], key
    assert 0 <= distributed["mia"] <= 100
