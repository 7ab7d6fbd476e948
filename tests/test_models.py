import pytest
import torch
from torch import nn

from camu_lightning.models import CNN, Frozen, ResNet18


@pytest.mark.parametrize(
    ("make", "classes", "shape", "params", "embedding"),
    [
        (lambda: CNN(10, (1, 28, 28)), 10, (1, 28, 28), 449_098, 256),
        (lambda: CNN(10, (1, 8, 8)), 10, (1, 8, 8), 80_458, 256),
        (lambda: ResNet18(10, (3, 32, 32), "cifar32"), 10, (3, 32, 32), 11_173_962, 512),
        (lambda: ResNet18(100, (3, 32, 32), "cifar32"), 100, (3, 32, 32), 11_220_132, 512),
        (lambda: ResNet18(10, (3, 224, 224), "imagenet224"), 10, (3, 64, 64), 11_181_642, 512),
        (lambda: ResNet18(100, (3, 224, 224), "imagenet224"), 100, (3, 64, 64), 11_227_812, 512),
    ],
)
def test_networks_have_the_spec_parameter_counts_and_output_shapes(make, classes, shape, params, embedding) -> None:
    network = make()
    assert sum(p.numel() for p in network.parameters()) == params
    logits, features = network(torch.rand(2, *shape))
    assert features.shape == (2, embedding) and logits.shape == (2, classes)


def test_every_cnn_parameter_gets_a_gradient() -> None:
    network = CNN(3, (1, 8, 8))
    logits, embedding = network(torch.rand(4, 1, 8, 8))
    (logits.sum() + embedding.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters())


def test_resnet_embedding_is_non_negative_and_feeds_the_head() -> None:
    network = ResNet18(5, (3, 32, 32), "cifar32").eval()
    logits, embedding = network(torch.rand(3, 3, 32, 32))
    assert (embedding >= 0).all()
    assert torch.allclose(logits, network.fc2(embedding))


def test_unknown_stem_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown network stem 'vit'; choose from: cifar32, imagenet224"):
        ResNet18(10, (3, 32, 32), "vit")


def test_frozen_copy_stays_in_eval_mode_without_gradients() -> None:
    frozen = Frozen(ResNet18(4, (3, 32, 32), "cifar32"))
    frozen.train()
    assert not frozen.network.training
    assert not any(p.requires_grad for p in frozen.network.parameters())
    # Outside the module tree (Lightning's eval-mode check sees no frozen layer), yet in the state_dict: a copy
    # changed through it loads back.
    owner = nn.ModuleDict({"original": frozen})
    assert [name for name, _ in owner.named_modules()] == ["", "original"]
    state = {key: torch.zeros_like(value) for key, value in owner.state_dict().items()}
    assert set(state) == {f"original.network.{key}" for key in frozen.network.state_dict()}
    owner.load_state_dict(state)
    assert all(not value.any() for value in frozen.network.state_dict().values())
    logits, _ = frozen(torch.rand(2, 3, 32, 32))
    assert not logits.requires_grad
