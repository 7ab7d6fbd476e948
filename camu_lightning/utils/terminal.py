"""What `camu` shows on the terminal: the package's log through rich, library noise filtered, errors as one line."""

from __future__ import annotations

import logging
import re
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.logging import RichHandler

console = Console(stderr=True)

# Lightning's rank-zero lines that say nothing about this run: the hardware census and its adverts.
NOISE = ("💡 Tip", "GPU available:", "TPU available:", "HPU available:", "`Trainer.fit` stopped:")


class DropNoise(logging.Filter):
    """Drops Lightning's rank-zero lines that say nothing about the run (`NOISE`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(marker in record.getMessage() for marker in NOISE)


def set_up_terminal() -> None:
    """The package's log through rich at INFO; library messages that say nothing about this run silenced."""
    package_log = logging.getLogger("camu_lightning")
    if not package_log.handlers:
        package_log.addHandler(RichHandler(console=console, show_path=False))
        package_log.setLevel(logging.INFO)
    # Frozen copies (the original model, teachers) are in eval mode on purpose.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    # Nested trainers (the original, SISA's stages) have no validation loop, though data modules offer one.
    warnings.filterwarnings("ignore", message="You passed in a `val_dataloader` but have no `validation_step`")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Evaluation metrics are torchmetrics states synced across ranks, equal on each: logged from rank 0 alone.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('(val|test)/")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, DropNoise) for existing in logger.filters):
            logger.addFilter(DropNoise())


def print_error(message: str) -> NoReturn:
    """The run's end for bad input: one line on stderr, exit status 2."""
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def own_error(error: BaseException) -> BaseException:
    """The first error in the chain raised by this package: jsonargparse wraps an error raised while it
    instantiates a class in a multi-line report, with ours as its cause."""
    package = str(Path(__file__).parents[1])  # camu_lightning/
    link: BaseException | None = error
    while link is not None:
        frames = traceback.extract_tb(link.__traceback__)
        if frames and frames[-1].filename.startswith(package):
            return link
        link = link.__cause__ or link.__context__
    return error


# Lines of a jsonargparse report that restate the type union rather than say what was wrong.
_RESTATEMENTS = ("Does not validate", "Subtypes:", "Errors:", "Given value type:", "Expected a <class 'NoneType'>")


def one_line_parser_error(message: str) -> str:
    """A jsonargparse report (a dozen lines restating the type union) as one line: the key, what is wrong, and
    the value given."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    key = re.match(r'Parser key "([^"]+)":', lines[0]) if lines else None
    if key is None:
        return " ".join(lines)
    given = next((line.removeprefix("Given value: ") for line in lines if line.startswith("Given value: ")), None)
    reasons = []
    for line in (line.removeprefix("- ") for line in lines[1:]):
        if line.startswith(_RESTATEMENTS + ("Given value: ", "Expected a path but")):
            continue
        line = re.sub(r"^Problem with given class_path '([^']+)':", r"\1:", line)
        reasons.append(re.sub(r"Expected a <class '(\w+)'>", r"expected \1", line))
    said = " ".join(reasons) or "invalid value"
    return f"{key.group(1)}: {said}" + (f" (given: {given})" if given and "NestedArg" not in given else "")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Every command's known errors, in one place: a setting the parser refused, bad input (ValueError, a missing
    file), an unusable cache entry or a diverged run end the command with one line and exit status 2."""
    from jsonargparse import ArgumentError

    from camu_lightning.cache import CacheError
    from camu_lightning.methods import DivergenceError

    try:
        yield
    except ArgumentError as error:  # not the usage text
        print_error(f"{one_line_parser_error(str(error))}; `camu fit --help` lists every setting")
    except (ValueError, FileNotFoundError, CacheError, DivergenceError) as error:
        print_error(str(own_error(error)))
