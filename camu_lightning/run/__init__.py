"""What happens around `trainer.fit` in an unlearning run, as Lightning callbacks, and `unlearn`, which composes
them; used alike by the Python API, `camu fit`, `camu score` and `camu tune`."""

from camu_lightning.run.clock import UnlearningClock
from camu_lightning.run.original_evaluation import OriginalEvaluation
from camu_lightning.run.results_writer import RunResults
from camu_lightning.run.starting_point import StartingPoint
from camu_lightning.run.streams import ServeStreams
from camu_lightning.run.unlearn import run_callbacks, unlearn

__all__ = ["OriginalEvaluation", "RunResults", "ServeStreams", "StartingPoint", "UnlearningClock", "run_callbacks",
           "unlearn"]  # fmt: skip
