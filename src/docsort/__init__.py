"""docsort: sort documents into categories, from TF-IDF to transformers and LLMs."""

__version__ = "0.1.0"

from docsort.api import compare, ensemble, evaluate, predict, train  # noqa: E402
from docsort.data.dataset import Dataset, from_frame, stratified_split  # noqa: E402
from docsort.data.labels import LabelSet, load_labels_file  # noqa: E402
from docsort.data.loaders import load_dataset  # noqa: E402
from docsort.models.base import Classifier, Model, Scorer, load, register  # noqa: E402

__all__ = [
    "Classifier",
    "Dataset",
    "LabelSet",
    "Model",
    "Scorer",
    "compare",
    "ensemble",
    "evaluate",
    "from_frame",
    "load",
    "load_dataset",
    "load_labels_file",
    "predict",
    "register",
    "stratified_split",
    "train",
]
