"""ChannelsLast: the same run in NHWC memory order, so the weights differ from the default layout's by rounding."""

import lightning as L
import torch
from torch import nn

from camu_lightning.channels_last import ChannelsLast
from camu_lightning.methods import CaMU
from camu_lightning.models import CNN
from camu_lightning.speed.camu_loops import SETTINGS
from tests.conftest import datamodule_for, fit


def unlearn(npz, make_trainer, callbacks) -> tuple[CaMU, list[torch.Tensor]]:
    """Two epochs of CaMU on tiny RGB data from seed 0; the method and its starting weights."""
    L.seed_everything(0)
    datamodule = datamodule_for(npz, forget_fraction=0.25, eval_batch_size=16)
    method = CaMU(CNN, 4, (3, 32, 32), seed=0, **(SETTINGS | {"batch_size": 8}))
    method.load_original(method.network.state_dict())
    start = [p.detach().clone() for p in method.network.parameters()]
    fit(make_trainer(max_steps=-1, max_epochs=2, limit_val_batches=0, callbacks=callbacks), method, datamodule)
    return method, start


def largest_difference(first, second) -> float:
    return max(float((a - b).detach().abs().max()) for a, b in zip(first, second, strict=True))


def convolution_weights(method: CaMU) -> list[torch.Tensor]:
    modules = [*method.modules(), *method.original.network.modules()]  # the frozen copy lives outside the tree
    return [module.weight for module in modules if isinstance(module, nn.Conv2d)]


def test_every_convolution_runs_nhwc_and_the_weights_match_the_default_layout(tiny_rgb_npz, make_trainer) -> None:
    default, start = unlearn(tiny_rgb_npz, make_trainer, [])
    nhwc, same_start = unlearn(tiny_rgb_npz, make_trainer, [ChannelsLast()])
    assert largest_difference(start, same_start) == 0
    weights = convolution_weights(nhwc)
    assert len(weights) == 4  # the unlearned network's two and the frozen original's two
    assert all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in weights)
    assert not any(w.is_contiguous(memory_format=torch.channels_last) for w in convolution_weights(default))
    assert largest_difference(default.network.parameters(), start) > 1e-3  # 4 batches of two Adam steps each
    assert largest_difference(default.network.parameters(), nhwc.network.parameters()) < 1e-5
