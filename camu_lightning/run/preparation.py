"""What a method needs before it unlearns, each from the cache or created and cached: the original's weights, the
method's training-time state (SISA's shards, Unroll's recorded pass), or its whole result (Retrain, stored after
it ran)."""

from __future__ import annotations

from typing import Any

import lightning as L

from camu_lightning.cache import CheckpointCache, NoCache, state_digest, weights_digest
from camu_lightning.keys import RunKeys
from camu_lightning.methods import UnlearningMethod
from camu_lightning.original import OriginalRecipe, original_weights

# What a cached result keeps of the run that made it: a run that takes it reports that run's times.
STORED_TIMES = ("time_unlearn_s", "time_unlearn_cpu_s", "unlearn_threads")


def prepare_method(
    method: UnlearningMethod,
    datamodule: L.LightningDataModule,
    cache: CheckpointCache | NoCache,
    keys: RunKeys,
    recipe: OriginalRecipe | None,
    trainer_settings: dict[str, Any],
    unlearned_key: dict[str, Any],
) -> dict[str, Any]:
    """Load what the method starts from into it; returns what results.json says of where each piece came from.

    Args:
        trainer_settings: a nested Trainer's settings for what must be trained (the run's devices and precision).
        unlearned_key: the cache settings of the method's result, for methods that cache it (Retrain).
    """
    results: dict[str, Any] = {}
    if method.given_model:  # the network holds the trained model it was given: the original is that
        original_key = {"weights": weights_digest(method.network.state_dict())}
        results = {"original_source": "given"} if method.starts_from_original else {}
    else:
        original_key = keys.original(recipe.training_settings(), recipe.precision) if recipe is not None else None
    if method.starts_from_original and not method.given_model:
        state_dict, results = original_weights(
            recipe, method.network, method.network_factory, datamodule, cache, original_key, trainer_settings
        )
        method.load_original(state_dict)
    if method.starts_from_original:  # which original every row of a table starts from, proven (not assumed)
        results["original_digest"] = weights_digest(method.network.state_dict())
    if (state := method.training_state_settings()) is not None:
        origin = original_key if method.starts_from_original else None
        settings = keys.training_state(origin, state, str(trainer_settings["precision"]))
        entry, created = cache.load_or_create(
            "state", settings, lambda: method.create_training_state(datamodule, trainer_settings)
        )
        method.load_training_state(entry["state_dict"])
        results |= {"time_prepare_s": entry["extra"]["time_create_s"], "prepare_from_cache": not created}
        results["state_digest"] = state_digest(entry["state_dict"])
    if method.caches_unlearned_model and (entry := cache.load("unlearned", unlearned_key)) is not None:
        method.network.load_state_dict(entry["state_dict"])
        stored = {key: value for key, value in entry["extra"].items() if key in STORED_TIMES}  # the run that made it
        results |= {"unlearned_from_cache": True, **stored}
    return results


def store_unlearned(
    method: UnlearningMethod, cache: CheckpointCache | NoCache, unlearned_key: dict[str, Any], results: dict[str, Any]
) -> None:
    """Cache the result of a method that caches it (Retrain), with its unlearning time, unless it came from there."""
    if method.caches_unlearned_model and not results.get("unlearned_from_cache"):
        weights = {key: value.detach().cpu() for key, value in method.network.state_dict().items()}
        cache.save("unlearned", unlearned_key, weights, {key: results[key] for key in STORED_TIMES if key in results})
