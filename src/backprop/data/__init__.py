"""Data: file formats, named datasets, and the preprocessing a model records.

* `backprop.data.formats`: one validated reader per format (IDX, CSV, NPY/NPZ).
* `backprop.data.datasets`: `load_dataset`, of a named dataset or a data file.
* `backprop.data.named`: the registry of named datasets, `DATASETS`.
* `backprop.data.dataset`: the `Dataset` record, and `assemble`, which checks and splits one.
* `backprop.data.preprocess`: `Preprocessor`, `LabelEncoder`, the split.
* `backprop.data.rows`: `Rows`, a matrix read batch by batch (data larger than memory).
"""

from backprop.data.datasets import (
    DATASETS,
    FASHION_MNIST_CLASS_NAMES,
    NAMED_DATASETS,
    Dataset,
    load_dataset,
)
from backprop.data.formats import DataError, load_idx_pair, read_idx, read_npy, read_npz
from backprop.data.preprocess import LabelEncoder, Preprocessor, train_val_split
from backprop.data.rows import Rows
from backprop.data.tables import read_csv, read_csv_table

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASS_NAMES",
    "NAMED_DATASETS",
    "DataError",
    "Dataset",
    "LabelEncoder",
    "Preprocessor",
    "Rows",
    "load_dataset",
    "load_idx_pair",
    "read_csv",
    "read_csv_table",
    "read_idx",
    "read_npy",
    "read_npz",
    "train_val_split",
]
