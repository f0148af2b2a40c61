"""Data: file formats, named datasets, and the preprocessing a model records.

* `backprop.data.formats`: one validated reader per format (IDX, CSV, NPY/NPZ).
* `backprop.data.datasets`: the registry of named datasets and `load_dataset`.
* `backprop.data.preprocess`: `Preprocessor`, `LabelEncoder`, the split.
"""

from backprop.data.datasets import (
    DATASETS,
    FASHION_MNIST_CLASS_NAMES,
    NAMED_DATASETS,
    Dataset,
    load_dataset,
)
from backprop.data.formats import (
    DataError,
    load_idx_pair,
    read_csv,
    read_csv_table,
    read_idx,
    read_npy,
    read_npz,
)
from backprop.data.preprocess import LabelEncoder, Preprocessor, train_val_split

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASS_NAMES",
    "NAMED_DATASETS",
    "DataError",
    "Dataset",
    "LabelEncoder",
    "Preprocessor",
    "load_dataset",
    "load_idx_pair",
    "read_csv",
    "read_csv_table",
    "read_idx",
    "read_npy",
    "read_npz",
    "train_val_split",
]
