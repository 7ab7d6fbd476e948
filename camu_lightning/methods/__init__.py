"""Unlearning methods; a method exists when its module is imported here and it subclasses UnlearningMethod."""

from camu_lightning.methods.base import DivergenceError, NetworkFactory, UnlearningMethod
from camu_lightning.methods.boundary_expanding import BoundaryExpanding
from camu_lightning.methods.boundary_shrink import BoundaryShrink
from camu_lightning.methods.camu import CaMU
from camu_lightning.methods.finetune import Finetune
from camu_lightning.methods.l1_sparse import L1Sparse
from camu_lightning.methods.ngrad import NGrad
from camu_lightning.methods.retrain import Retrain
from camu_lightning.methods.salun import SalUn
from camu_lightning.methods.scrub import SCRUB
from camu_lightning.methods.sisa import SISA
from camu_lightning.methods.ssd import SSD
from camu_lightning.methods.teacher_student import TeacherStudent
from camu_lightning.methods.unroll import Unroll

__all__ = [
    "BoundaryExpanding",
    "BoundaryShrink",
    "CaMU",
    "DivergenceError",
    "Finetune",
    "L1Sparse",
    "NetworkFactory",
    "NGrad",
    "Retrain",
    "SalUn",
    "SCRUB",
    "SISA",
    "SSD",
    "TeacherStudent",
    "UnlearningMethod",
    "Unroll",
]
