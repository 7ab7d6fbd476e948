"""SSD, Selective Synaptic Dampening (Foster, Schoepf & Brintrup, AAAI 2024; baselines.md section 12;
if-loops/selective-synaptic-dampening, `src/ssd.py` ParameterPerturber).

No training. In eval mode and without augmentation, the importance of each parameter element on a data set is the
mean over mini-batches of its squared mini-batch CE gradient: I_f on D_f, I_D on the whole training set (D_r, then
D_f, unshuffled). Elements with I_f > alpha * I_D are scaled by min(lambda * I_D / I_f, 1); every other element,
and every buffer, is untouched. The reference's ResNet-18 defaults (alpha 10, lambda 1) carry over unchanged to
MNIST's CNN: the rule has no learning rate or epoch count to adapt. Its batch size is 128 for random forgetting and
64 for class forgetting (configs/<dataset>_ssd_class.yaml), the same for both passes, as the importances depend on it.
With 10 classes, one class is ~10 % of the training set and its batches ~10 % of the D pass, so I_D >= ~0.1 I_f
everywhere: at alpha 10 only elements the other classes barely touch are selected (563 of 449k at batch 128 on
MNIST class 0, which it then does not forget); the reference's class defaults come from CIFAR-20/100, where a
class is <= 5 %.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camu_lightning.methods.base import NetworkFactory, UnlearningMethod
from camu_lightning.passes import summed_gradients


def importances(network: nn.Module, batches) -> dict[str, Tensor]:
    """Per element: the mean over batches of the squared gradient of the batch-mean CE."""
    sums, count = summed_gradients(network, batches, F.cross_entropy, squared=True)
    return {name: total / count for name, total in sums.items()}


@torch.no_grad()
def dampen(
    network: nn.Module, forget: dict[str, Tensor], full: dict[str, Tensor], selection_weighting: float, dampening: float
) -> int:
    """Scale the selected elements (I_f > alpha * I_D, strict) by min(lambda * I_D / I_f, 1); returns how many.

    Indexing, never a multiplied mask: outside the selection lambda * I_D / I_f can be 0/0.
    """
    selected_count = 0
    for name, parameter in network.named_parameters():
        selected = forget[name] > selection_weighting * full[name]
        factor = (dampening * full[name][selected] / forget[name][selected]).clamp(max=1.0)
        parameter[selected] = parameter[selected] * factor.to(parameter.dtype)
        selected_count += int(selected.sum())
    return selected_count


class SSD(UnlearningMethod):
    """Dampen the parameters far more important to D_f than to the whole training set; nothing to iterate
    (it asks for no training stream, so Lightning's fit runs no batch).

    Args:
        selection_weighting: alpha, the selection threshold on I_f / I_D (10).
        dampening_constant: lambda (1).
        batch_size: of both importance passes (128 random forgetting, 64 class forgetting).
    """

    distributable = False  # a one-shot edit: every rank would repeat the same passes
    epoch_range = (1, 1)  # its work happens once, at fit start

    def __init__(
        self,
        network: NetworkFactory,
        num_classes: int,
        input_shape: tuple[int, int, int],
        seed: int,
        selection_weighting: float,
        dampening_constant: float,
        batch_size: int,
    ) -> None:
        super().__init__(network, num_classes, input_shape, seed)
        if selection_weighting <= 0 or dampening_constant <= 0 or batch_size < 1:
            raise ValueError(
                "model.selection_weighting and model.dampening_constant must be > 0 and model.batch_size >= 1, "
                f"got {selection_weighting}, {dampening_constant}, {batch_size}"
            )
        self.selected = 0

    def train_streams(self) -> dict[str, int]:
        return {}  # nothing to iterate: the passes happen at fit start

    def pass_streams(self) -> dict[str, int]:
        return {"forget_fixed": self.hparams.batch_size, "train_fixed": self.hparams.batch_size}

    def on_fit_start(self) -> None:
        super().on_fit_start()
        hp = self.hparams
        self.network.eval()  # the reference's mode for both passes (BN statistics untouched)
        forget = importances(self.network, self.pass_loaders["forget_fixed"])
        full = importances(self.network, self.pass_loaders["train_fixed"])
        self.selected = dampen(self.network, forget, full, hp.selection_weighting, hp.dampening_constant)

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> None:
        raise RuntimeError("SSD has no training loop: it asks for no training stream, so fit runs no batch")

    def configure_optimizers(self) -> None:
        return None  # the dampening is closed-form

    def unlearning_summary(self) -> dict[str, float]:
        return super().unlearning_summary() | {"ssd_selected_elements": self.selected}
