"""The run's callbacks find each other on the Trainer, so a user adds them to any Trainer without wiring them."""

from __future__ import annotations

from typing import TypeVar

import lightning as L

CallbackType = TypeVar("CallbackType", bound=L.Callback)


def find_callback(trainer: L.Trainer, kind: type[CallbackType]) -> CallbackType:
    """The Trainer's callback of this kind; a one-line error naming it when the Trainer has none."""
    found = [callback for callback in trainer.callbacks if isinstance(callback, kind)]
    if not found:
        raise ValueError(
            f"the Trainer has no {kind.__name__} callback: add camu_lightning.run_callbacks(...) to its callbacks"
        )
    return found[0]
