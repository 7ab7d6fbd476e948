"""The CaMU loop written plainly, twice, as the speed benchmark's references (camu.md sections 4 and 11).

`naive_camu`: per-sample Datasets and DataLoader(batch 32), six forwards and two backwards per batch in the
official order. `limit_camu`: in-memory tensors with every exact shortcut (frozen outputs precomputed in one
batched pass, one forward per step for a network without batch norm, batches as index selections).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from camu_lightning.methods.camu import kl_sum

SETTINGS = dict(
    kl_lr=4e-4,
    ce_lr=5e-4,
    weight_decay=1e-4,
    batch_size=32,
    remain_kl_weight=0.5,
    counterfactual_kl_weight=0.5,
    counterfactual_ce_weight=0.01,
    remain_ce_weight=0.9,
    terms=["remain_kl", "counterfactual_kl", "counterfactual_ce", "remain_ce"],
)


class PerSampleTuples(Dataset):
    def __init__(self, tuples, dtype: torch.dtype = torch.float32) -> None:
        self.tuples, self.dtype = tuples, dtype

    def __len__(self) -> int:
        return len(self.tuples)

    def __getitem__(self, i: int):
        tuples = self.tuples
        return tuples.x_forget[i].to(self.dtype), tuples.x_counterfactual[i].to(self.dtype), tuples.y_counterfactual[i]


class PerSampleImages(Dataset):
    """One decoded, scaled image per __getitem__, as a torchvision-style dataset would give."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> None:
        self.images, self.labels, self.rows, self.dtype = images, labels, rows, dtype

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = int(self.rows[i])
        return (self.images[row].float() / 255).to(self.dtype), self.labels[row]


class ReplaySampler(torch.utils.data.Sampler):
    def __init__(self, order: list[int]) -> None:
        self.order = order

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def naive_camu(model, original, tuples, sample_set, epochs, orders=None, dtype=torch.float32) -> None:
    """Six forwards, two backwards per batch; `orders` replays recorded (tuple, sample) orders per epoch."""
    kl_optimizer = torch.optim.Adam(model.parameters(), lr=SETTINGS["kl_lr"], weight_decay=SETTINGS["weight_decay"])
    ce_optimizer = torch.optim.Adam(model.parameters(), lr=SETTINGS["ce_lr"], weight_decay=SETTINGS["weight_decay"])
    model.train()
    for epoch in range(epochs):
        tuple_kwargs = {"sampler": ReplaySampler(orders[epoch][0])} if orders else {"shuffle": True}
        sample_kwargs = {"sampler": ReplaySampler(orders[epoch][1])} if orders else {"shuffle": True}
        tuple_loader = DataLoader(PerSampleTuples(tuples, dtype), batch_size=32, **tuple_kwargs)
        sample_loader = DataLoader(sample_set, batch_size=32, **sample_kwargs)
        for (x_f, x_cf, y_cf), (x_r, y_r) in zip(tuple_loader, sample_loader, strict=True):
            with torch.no_grad():
                e0_r = original(x_r)[1]
            e_r = model(x_r)[1]
            with torch.no_grad():
                e0_cf = original(x_cf)[1]
            e_f = model(x_f)[1]
            loss = 0.5 * kl_sum(e0_r, e_r) + 0.5 * kl_sum(e0_cf, e_f)
            kl_optimizer.zero_grad()
            loss.backward()
            kl_optimizer.step()
            z_f = model(x_f)[0]
            z_r = model(x_r)[0]
            loss = 0.9 * F.cross_entropy(z_r, y_r) + 0.01 * F.cross_entropy(z_f, y_cf)
            ce_optimizer.zero_grad()
            loss.backward()
            ce_optimizer.step()


def limit_camu(model, original, tuples, x_sample, y_sample, epochs, orders=None) -> None:
    """In-memory tensors, frozen outputs precomputed in one batched pass, one forward per step (no batch norm);
    `orders` replays recorded (tuple, sample) orders per epoch."""
    kl_optimizer = torch.optim.Adam(model.parameters(), lr=SETTINGS["kl_lr"], weight_decay=SETTINGS["weight_decay"])
    ce_optimizer = torch.optim.Adam(model.parameters(), lr=SETTINGS["ce_lr"], weight_decay=SETTINGS["weight_decay"])
    with torch.no_grad():
        e0_cf = torch.cat([original(chunk)[1] for chunk in tuples.x_counterfactual.split(1024)])
        e0_r = torch.cat([original(chunk)[1] for chunk in x_sample.split(1024)])
    model.train()
    for epoch in range(epochs):
        tuple_order, sample_order = (
            (torch.tensor(order) for order in orders[epoch])
            if orders
            else (torch.randperm(len(tuples)), torch.randperm(len(x_sample)))
        )
        for t, s in zip(tuple_order.split(32), sample_order.split(32), strict=True):
            x_r, x_f = x_sample[s], tuples.x_forget[t]
            embedding = model(torch.cat([x_r, x_f]))[1]
            loss = 0.5 * kl_sum(e0_r[s], embedding[: len(s)]) + 0.5 * kl_sum(e0_cf[t], embedding[len(s) :])
            kl_optimizer.zero_grad()
            loss.backward()
            kl_optimizer.step()
            logits = model(torch.cat([x_f, x_r]))[0]
            loss = 0.9 * F.cross_entropy(logits[len(t) :], y_sample[s]) + 0.01 * F.cross_entropy(
                logits[: len(t)], tuples.y_counterfactual[t]
            )
            ce_optimizer.zero_grad()
            loss.backward()
            ce_optimizer.step()
