"""The speed benchmark's premise: its reference loops compute what the suite computes."""


def test_the_speed_benchmarks_loops_reach_the_suites_weights_on_its_batch_order(tiny_datamodule) -> None:
    """The premise of `speed.benchmark`: (a) and (c) compute what `camu fit` computes, shortcuts included."""
    from camu_lightning.models import CNN
    from camu_lightning.speed.benchmark import max_difference, replayed_networks

    networks = replayed_networks(tiny_datamodule, CNN(3, (1, 8, 8)).state_dict())
    assert max_difference(networks["start"], networks["suite"]) > 1e-4  # one epoch moved the weights
    assert max_difference(networks["suite"], networks["naive"]) < 1e-12
    assert max_difference(networks["suite"], networks["limit"]) < 1e-12
