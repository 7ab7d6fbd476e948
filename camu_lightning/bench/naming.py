"""The report's names and orders: how a method, a dataset and a setting are shown, and in which order."""

from __future__ import annotations

from camu_lightning.gaps import ATTACK_KEYS

NAMES = {  # the tables' names of the methods; a method not listed here is shown by its key
    "retrain": "Retrain", "camu": "CaMU", "camu_fast": "CaMU (fast preset)", "finetune": "Finetune", "ngrad": "NGrad",
    "boundary_shrink": "Boundary shrink", "boundary_expanding": "Boundary expanding", "teacher_student": "T-S",
    "scrub": "SCRUB", "sisa": "SISA", "unroll": "Unroll", "salun": "SalUn", "ssd": "SSD", "l1_sparse": "ℓ1-sparse",
    "camu_remove": "Remove", "camu_removeto": "Removeto", "retrain_anotherinit": "Retrain (another init)",
}  # fmt: skip
ORDER = list(NAMES)
ABLATIONS = ("camu_remove", "camu_removeto")  # CaMU without one causal path (RQ2)
RELEARN_LABEL = "relearn"  # the label of configs/bench/relearn.yaml's rows
FLOOR_KEY = "retrain_anotherinit"  # configs/bench/floor.yaml's rows: a Retrain of each seed's split, another init
RELEARN_FALL_POINTS = 1.0  # a relearning curve's D_f accuracy below its start by more than this: a fall
GAP_COLUMNS = ("avg_gap", "tow", "tow_mia", "rte", "rte_with_prepare", *(f"gap_{key}" for key in ATTACK_KEYS))


def display(method_key: str) -> str:
    """A row's method key as the tables name it; a study's label (e.g. `_relearn`) is dropped."""
    key = method_key.removesuffix(f"_{RELEARN_LABEL}")
    base = key.removesuffix("_tuned")
    return NAMES.get(base, base) + (" (tuned)" if key != base else "")


def plain(method_key: str) -> bool:
    """A method's own rows, any method's (NAMES only prettifies): not a sweep point, whose key ends in its value
    (camu_max_epochs3), nor a labelled study (camu_relearn), which have sections of their own, nor the floor's
    Retrain of another init."""
    return not method_key.endswith(f"_{RELEARN_LABEL}") and not method_key[-1].isdigit() and method_key != FLOOR_KEY


def ordered(methods) -> list[str]:
    def rank(key: str) -> tuple[int, str]:
        base = key.removesuffix(f"_{RELEARN_LABEL}").removesuffix("_tuned")
        return ORDER.index(base) if base in ORDER else len(ORDER), key

    return sorted(methods, key=rank)


DATASET_ORDER = ("mnist", "fashion_mnist", "cifar10", "cifar100")  # the paper's order; others after, by name


MAIN_SCENARIOS = ("random", "class0")  # the paper's main tables; other removals (random15, class1, ...): its appendix


def setting_order(setting: tuple[str, str]) -> tuple[int, str, bool, int, str]:
    """MNIST before Fashion-MNIST, random removal before class removal (the paper's tables), then by size:
    random before random15 before random20."""
    dataset, scenario = setting
    known = DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER)
    return known, dataset, not scenario.startswith("random"), len(scenario), scenario


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in body)]
