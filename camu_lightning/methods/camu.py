"""CaMU: causal machine unlearning (Shen et al., SDM 2024; camu.md, from the official `remove.py`).

Per batch of tuples (x_f, x_cf, y_cf) and an independent batch (x_r, y_r) of the remain sample set S:

1. representation step (Adam_KL):
   L_KL = 0.5 * KL_sum(e0(x_r) || e(x_r)) + 0.5 * KL_sum(e0(x_cf) || e(x_f))
2. output step (Adam_CE), with fresh forwards after step 1:
   L_CE = 0.9 * CE(z(x_r), y_r) + 0.01 * CE(z(x_f), y_cf)

e0 is the frozen original's embedding, e and z the unlearned model's embedding and logits. KL_sum is the
KL divergence between softmaxes over the embedding's features, summed over batch and features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.models import Frozen, FrozenEmbeddings, full_precision
from camu_lightning.utils.train_logging import log_train_values

KL_TERMS = ("remain_kl", "counterfactual_kl")
CE_TERMS = ("counterfactual_ce", "remain_ce")
TERMS = (*KL_TERMS, *CE_TERMS)


def kl_sum(target_embedding: Tensor, embedding: Tensor) -> Tensor:
    """KL(P || Q) summed over rows and features; P = softmax of the frozen target, Q of the trained input."""
    return F.kl_div(
        F.log_softmax(full_precision(embedding), dim=1),
        F.softmax(full_precision(target_embedding), dim=1),
        reduction="sum",
    )


def has_batch_norm(network: nn.Module) -> bool:
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in network.modules())


class CaMU(UnlearningMethod):
    """Two optimizers over all parameters, stepped one after the other on every batch (manual optimisation).

    Args:
        kl_lr: learning rate of Adam_KL (representation step).
        ce_lr: learning rate of Adam_CE (output step).
        weight_decay: coupled L2 of both Adams (torch.optim.Adam, as official).
        batch_size: tuples per batch; the remain stream uses the same size.
        terms: loss terms switched on; the ablations (camu.md section 6) drop some: Finetune [remain_ce],
            Remove [remain_kl, remain_ce], Removeto [counterfactual_kl, counterfactual_ce, remain_ce].
            A step whose terms are all off is skipped entirely.
        remain_kl_weight, counterfactual_kl_weight, counterfactual_ce_weight, remain_ce_weight: term weights.
    """

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        kl_lr: float,
        ce_lr: float,
        weight_decay: float,
        batch_size: int,
        terms: list[str],
        remain_kl_weight: float,
        counterfactual_kl_weight: float,
        counterfactual_ce_weight: float,
        remain_ce_weight: float,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        unknown = sorted(set(terms) - set(TERMS))
        if unknown or not terms:
            raise ValueError(f"model.terms must be a non-empty subset of {', '.join(TERMS)}; got {terms}")
        for name, value in (("kl_lr", kl_lr), ("ce_lr", ce_lr), ("batch_size", batch_size)):
            if value <= 0:
                raise ValueError(f"model.{name} must be > 0, got {value}")
        if weight_decay < 0:
            raise ValueError(f"model.weight_decay must be >= 0, got {weight_decay}")
        self.automatic_optimization = False
        self.original = Frozen(self.network)
        self.frozen_embeddings = FrozenEmbeddings(self.original)
        self.weights = {
            "remain_kl": remain_kl_weight,
            "counterfactual_kl": counterfactual_kl_weight,
            "counterfactual_ce": counterfactual_ce_weight,
            "remain_ce": remain_ce_weight,
        }
        self.single_forward = not has_batch_norm(self.network)

    def load_original(self, state_dict: dict[str, Tensor]) -> None:
        super().load_original(state_dict)
        self.original.network.load_state_dict(state_dict)

    def uses(self, term: str) -> bool:
        return term in self.hparams.terms

    def train_streams(self) -> dict[str, int]:
        # Without counterfactual terms no tuple is built; S alone sets the batch count, since |S| = |T|.
        needs_tuples = self.uses("counterfactual_kl") or self.uses("counterfactual_ce")
        streams = {"counterfactual": self.hparams.batch_size} if needs_tuples else {}
        return streams | {"remain_sample": self.hparams.batch_size}

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        return [
            torch.optim.Adam(self.network.parameters(), lr=lr, weight_decay=hp.weight_decay)
            for lr in (hp.kl_lr, hp.ce_lr)
        ]

    def on_train_start(self) -> None:
        self.frozen_embeddings.clear()

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> None:
        """camu.md's two steps on one batch of tuples and one of S, each with its own Adam:
        1. representation: L_KL = w_rkl * KL(e0(x_r) || e(x_r)) + w_ckl * KL(e0(x_cf) || e(x_f));
        2. output, with fresh forwards: L_CE = w_rce * CE(z(x_r), y_r) + w_cce * CE(z(x_f), y_cf)."""
        tuples, remain = batch.get("counterfactual"), batch["remain_sample"]
        kl_optimizer, ce_optimizer = self.optimizers()
        losses = {}
        if any(self.uses(term) for term in KL_TERMS):
            losses |= self.representation_terms(tuples, remain)
            self.optimize(kl_optimizer, self.weighted_sum(losses, KL_TERMS))
        if any(self.uses(term) for term in CE_TERMS):
            losses |= self.output_terms(tuples, remain)
            self.optimize(ce_optimizer, self.weighted_sum(losses, CE_TERMS))
        log_train_values(self, {f"train/{name}": value for name, value in losses.items()})

    def representation_terms(self, tuples: dict[str, Tensor] | None, remain: dict[str, Tensor]) -> dict[str, Tensor]:
        """remain-KL pulls e(x_r) to e0(x_r); counterfactual-KL pulls e(x_f) to e0(x_cf)."""
        inputs = {}
        if self.uses("remain_kl"):
            inputs["remain_kl"] = remain["x"]
        if self.uses("counterfactual_kl"):
            inputs["counterfactual_kl"] = tuples["x_forget"]
        embeddings = {
            name: output[1] for name, output in zip(inputs, self.forward_each(list(inputs.values())), strict=True)
        }
        terms = {}
        if "remain_kl" in embeddings:
            target = self.frozen_embeddings("remain", remain["x"], remain.get("index"))
            terms["remain_kl"] = kl_sum(target, embeddings["remain_kl"])
        if "counterfactual_kl" in embeddings:
            target = self.frozen_embeddings("counterfactual", tuples["x_counterfactual"], tuples["index"])
            terms["counterfactual_kl"] = kl_sum(target, embeddings["counterfactual_kl"])
        return terms

    def output_terms(self, tuples: dict[str, Tensor] | None, remain: dict[str, Tensor]) -> dict[str, Tensor]:
        """counterfactual-CE moves z(x_f) to the counterfactual label; remain-CE keeps z(x_r) on the true label."""
        inputs = {}
        if self.uses("counterfactual_ce"):
            inputs["counterfactual_ce"] = tuples["x_forget"]
        if self.uses("remain_ce"):
            inputs["remain_ce"] = remain["x"]
        logits = {
            name: output[0] for name, output in zip(inputs, self.forward_each(list(inputs.values())), strict=True)
        }
        terms = {}
        if "counterfactual_ce" in logits:
            terms["counterfactual_ce"] = F.cross_entropy(
                full_precision(logits["counterfactual_ce"]), tuples["y_counterfactual"]
            )
        if "remain_ce" in logits:
            terms["remain_ce"] = F.cross_entropy(full_precision(logits["remain_ce"]), remain["y"])
        return terms

    def forward_each(self, inputs: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """The network on each input, in order: one concatenated forward when the network has no batch norm
        (camu.md section 11; identical results), separate forwards otherwise (batch statistics differ)."""
        if not self.single_forward or len(inputs) == 1:
            return [self.network(x) for x in inputs]
        logits, embedding = self.network(torch.cat(inputs))
        sizes = [len(x) for x in inputs]
        return list(zip(logits.split(sizes), embedding.split(sizes), strict=True))

    def weighted_sum(self, losses: dict[str, Tensor], names: tuple[str, ...]) -> Tensor:
        return sum(self.weights[name] * losses[name] for name in names if name in losses)

    def optimize(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        self.check_finite(loss)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
