"""Tests of backprop.data: readers (round trips and every broken input), split, standardiser.

IDX, CSV and NPY files are written here with independent code (``struct``, string
formatting, ``np.save``) into ``tmp_path``; expected values come from that construction or
from NumPy / scikit-learn, never from the module under test.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop.data import (
    DataError,
    LabelEncoder,
    Preprocessor,
    Rows,
    formats,
    load_dataset,
    load_idx_pair,
    named,
    preprocess,
    read_csv,
    read_idx,
    train_val_split,
)
from backprop.data import rows as rows_module
from backprop.data.tables import read_csv_columns

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode ``arr`` in the IDX format (big-endian header and payload), by the spec."""
    code = IDX_CODES[arr.dtype.str[1:]]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim)
    header += struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(6, 4, 5), dtype=np.uint8)


@pytest.fixture
def labels() -> np.ndarray:
    return np.array([0, 1, 2, 1, 0, 2], dtype=np.uint8)


def make_idx_dir(
    d: Path, n_train: int = 12, n_test: int = 6, gz: bool = True, max_label: int = 9
) -> tuple[np.ndarray, ...]:
    """A miniature (Fashion-)MNIST directory with 4x5 images; returns the arrays written."""
    rng = np.random.default_rng(2)
    d.mkdir(parents=True, exist_ok=True)
    arrays = (
        rng.integers(0, 256, size=(n_train, 4, 5), dtype=np.uint8),
        (np.arange(n_train) % (max_label + 1)).astype(np.uint8),
        rng.integers(0, 256, size=(n_test, 4, 5), dtype=np.uint8),
        (np.arange(n_test) % (max_label + 1)).astype(np.uint8),
    )
    ext = ".gz" if gz else ""
    for stem, a in zip(formats.IDX_FILES.values(), arrays, strict=True):
        write(d / (stem + ext), idx_bytes(a), gz)
    return arrays


# ---------------------------------------------------------------------------------------
# IDX round trips


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip_images_and_labels(tmp_path, images, labels, gz):
    got_images = read_idx(write(tmp_path / "img", idx_bytes(images), gz))
    got_labels = read_idx(write(tmp_path / "lab", idx_bytes(labels), gz))
    assert got_images.dtype == np.uint8 and got_images.shape == (6, 4, 5)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_read_idx_magic_numbers_are_2051_and_2049(images, labels):
    # The header our writer makes must carry the documented magic numbers.
    assert struct.unpack(">I", idx_bytes(images)[:4])[0] == 2051
    assert struct.unpack(">I", idx_bytes(labels)[:4])[0] == 2049


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "f4", "f8"])
def test_read_idx_other_element_types_big_endian(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    got = read_idx(write(tmp_path / "a.idx", idx_bytes(a)))
    assert got.dtype == np.dtype(dtype)  # native byte order
    np.testing.assert_array_equal(got, a)


def test_gzip_detected_by_magic_not_extension(tmp_path, labels):
    # gzip data without .gz, and raw IDX that kept a .gz name, both read correctly.
    np.testing.assert_array_equal(read_idx(write(tmp_path / "x", idx_bytes(labels), True)), labels)
    np.testing.assert_array_equal(
        read_idx(write(tmp_path / "y.gz", idx_bytes(labels), False)), labels
    )


def test_load_idx_pair(tmp_path, images, labels):
    X, y = load_idx_pair(
        write(tmp_path / "i.gz", idx_bytes(images), True), write(tmp_path / "l", idx_bytes(labels))
    )
    np.testing.assert_array_equal(X, images)
    np.testing.assert_array_equal(y, labels)


# ---------------------------------------------------------------------------------------
# IDX broken inputs


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path, labels, gz):
    bad = b"\x12\x34" + idx_bytes(labels)[2:]
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(write(tmp_path / "lab", bad, gz))
    bad_type = b"\x00\x00\x07\x01" + idx_bytes(labels)[4:]  # 0x07 is no IDX element type
    with pytest.raises(DataError, match="bad magic"):
        read_idx(write(tmp_path / "lab2", bad_type, gz))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut", [1, 30, 100])
def test_truncated_payload(tmp_path, images, gz, cut):
    payload = idx_bytes(images)[:-cut]
    with pytest.raises(DataError, match="truncated"):
        read_idx(write(tmp_path / "img", payload, gz))


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_header(tmp_path, images, gz):
    with pytest.raises(DataError, match=r"truncated|not an IDX"):
        read_idx(write(tmp_path / "img", idx_bytes(images)[:9], gz))


def test_truncated_gzip_stream(tmp_path, images):
    # The compressed file itself is cut short (an interrupted download).
    compressed = gzip.compress(idx_bytes(images))
    path = tmp_path / "img.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=r"img\.gz.*(truncated|corrupt)"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_bytes(tmp_path, labels, gz):
    with pytest.raises(DataError, match="trailing"):
        read_idx(write(tmp_path / "lab", idx_bytes(labels) + b"\x00", gz))


@pytest.mark.parametrize("name", ["empty", "empty.gz"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_idx(tmp_path / name)


def test_empty_gzip_stream(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_idx(write(tmp_path / "e.gz", b"", gz=True))


def test_html_saved_as_gz(tmp_path):
    html = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n"
    with pytest.raises(DataError, match=r"not gzip.*HTML"):
        read_idx(write(tmp_path / "train-images-idx3-ubyte.gz", html))
    with pytest.raises(DataError, match="not gzip"):
        read_idx(write(tmp_path / "junk.gz", b"PK\x03\x04 a zip file, not gzip"))


def test_header_claiming_huge_array_is_refused_without_allocating(tmp_path):
    # 4 billion^3 bytes claimed, 8 bytes present: must fail on sizes, not try to allocate.
    claim = struct.pack(">BBBBIII", 0, 0, 8, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"12345678"
    with pytest.raises(DataError, match="truncated"):
        read_idx(write(tmp_path / "huge", claim))
    # A gzip stream's size is unknown until read: refused on the memory it would need.
    with pytest.raises(DataError, match=r"needs .* of memory; this machine has"):
        read_idx(write(tmp_path / "huge.gz", claim, gz=True))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="directory"):
        read_idx(tmp_path)


def test_idx_pair_count_mismatch(tmp_path, images, labels):
    img = write(tmp_path / "i", idx_bytes(images))
    lab = write(tmp_path / "l", idx_bytes(labels[:5]))
    with pytest.raises(DataError, match=r"6 images.*5 labels"):
        load_idx_pair(img, lab)


def test_idx_pair_swapped_files(tmp_path, images, labels):
    img = write(tmp_path / "i", idx_bytes(images))
    lab = write(tmp_path / "l", idx_bytes(labels))
    with pytest.raises(DataError, match="image file"):
        load_idx_pair(lab, img)


# ---------------------------------------------------------------------------------------
# IDX fuzzing: either a valid array or DataError, never any other exception


def _read_or_data_error(path: Path) -> None:
    try:
        out = read_idx(path)
    except DataError:
        return
    assert isinstance(out, np.ndarray)
    # A valid result must account for every byte of the (decompressed) file.
    raw = path.read_bytes()
    body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    assert len(body) == 4 + 4 * out.ndim + out.nbytes


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(blob=st.binary(max_size=300), gz=st.booleans(), name=st.sampled_from(["f", "f.gz"]))
def test_fuzz_random_bytes(tmp_path, blob, gz, name):
    _read_or_data_error(write(tmp_path / name, blob, gz))


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 20),
    extra=st.binary(max_size=8),
    gz=st.booleans(),
    compress_after=st.booleans(),
)
def test_fuzz_mutated_valid_files(tmp_path, edits, cut, extra, gz, compress_after):
    rng = np.random.default_rng(0)
    valid = idx_bytes(rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8))
    # Mutate either the IDX bytes (then maybe compress) or the compressed bytes themselves.
    blob = bytearray(gzip.compress(valid) if gz and not compress_after else valid)
    for pos, val in edits:
        blob[pos % len(blob)] = val
    blob = blob[: len(blob) - cut] + extra
    _read_or_data_error(write(tmp_path / "f.gz", bytes(blob), gz and compress_after))


# ---------------------------------------------------------------------------------------
# IDX datasets: lookup, real Fashion-MNIST


def test_idx_dataset_from_data_dir(tmp_path):
    tr_img, tr_lab, te_img, _ = make_idx_dir(tmp_path / "fm", max_label=3)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path / "fm")
    assert ds.task == "classification" and ds.image_shape == (4, 5)
    assert ds.X_train.shape == (12, 20) and ds.X_test.shape == (6, 20)
    # Raw pixels, kept uint8 (4x less memory); the model's preprocessor divides by 255.
    assert ds.X_train.dtype == np.uint8 and ds.input_scale == 255.0
    np.testing.assert_array_equal(ds.X_train, tr_img.reshape(12, 20))
    np.testing.assert_array_equal(ds.X_test, te_img.reshape(6, 20))
    np.testing.assert_array_equal(ds.y_train, tr_lab)  # labels 0..3 map to themselves
    np.testing.assert_array_equal(ds.classes, [0, 1, 2, 3])
    assert ds.y_train.dtype == np.int64


def test_idx_dataset_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setattr(named, "SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path / "env"))
    make_idx_dir(tmp_path / "env" / "mnist", n_train=10, gz=False)
    assert load_dataset("mnist").X_train.shape == (10, 20)  # found via $BACKPROP_DATA/mnist
    make_idx_dir(tmp_path / "mine" / "mnist", n_train=14)
    # data_dir (here its <name> subfolder) wins over the environment.
    assert load_dataset("mnist", data_dir=tmp_path / "mine").X_train.shape == (14, 20)


def test_missing_idx_dataset_lists_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(named, "SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path / "env"))
    partial = tmp_path / "dd"
    make_idx_dir(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", data_dir=partial)
    msg = str(err.value)
    for place in (
        partial,
        partial / "fashion-mnist",
        tmp_path / "env" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ):
        assert str(place) in msg
    assert "missing test_labels" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_idx_labels_out_of_range(tmp_path):
    make_idx_dir(tmp_path / "fm", max_label=11)
    with pytest.raises(DataError, match="label 11 out of range"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "fm")


def test_idx_directory_path_without_test_files_is_split(tmp_path):
    d = tmp_path / "mine"
    make_idx_dir(d, n_train=20, gz=False, max_label=1)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / stem).unlink()
    ds = load_dataset(str(d), test_fraction=0.2)
    assert (len(ds.X_train), len(ds.X_test)) == (16, 4)
    assert ds.image_shape == (4, 5)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} not installed (dataset-fashion-mnist)")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("BACKPROP_DATA", raising=False)
    ds = load_dataset("fashion-mnist")
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X_train.dtype == np.uint8 and ds.image_shape == (28, 28)
    assert ds.X_train.min() == 0 and ds.X_train.max() == 255 and ds.input_scale == 255.0
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    np.testing.assert_array_equal(np.bincount(ds.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)


# ---------------------------------------------------------------------------------------
# CSV


def test_csv_round_trip_header_and_named_target(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,label,b\n1,0,2.5\n3,1,-4\n5,1,6e-1\n")
    X, y, names = read_csv(p, target="label", dtype=np.float64)
    np.testing.assert_array_equal(X, [[1, 2.5], [3, -4], [5, 0.6]])
    X32, _, _ = read_csv(p, target="label")  # float32 by default, parsed straight into it
    assert X32.dtype == np.float32
    np.testing.assert_array_equal(X32, np.float32([[1, 2.5], [3, -4], [5, 0.6]]))
    np.testing.assert_array_equal(y, [0, 1, 1])
    assert names == ["a", "b"]


def test_csv_target_column_default_and_last_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("target,x\n7,1\n8,2\n")
    X, y, names = read_csv(p)
    np.testing.assert_array_equal(y, [7, 8])
    assert names == ["x"]
    q = tmp_path / "noheader.csv"
    q.write_text("1,2,3\n4,5,6\n\n")  # no header, blank line ignored: target is the last column
    X, y, names = read_csv(q)
    np.testing.assert_array_equal(X, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(y, [3, 6])
    assert names is None


def test_a_headerless_csv_takes_the_targets_column_number(tmp_path: Path) -> None:
    # Labels in front, no header: --target 1 (messages number such columns from 1).
    q = tmp_path / "label-first.csv"
    q.write_text("0,1.5,2.5\n1,3.5,4.5\n0,5.5,6.5\n1,7.5,8.5\n")
    X, y, names = read_csv(q, target="1")
    assert names is None
    np.testing.assert_array_equal(y, [0, 1, 0, 1])
    np.testing.assert_array_equal(X, [[1.5, 2.5], [3.5, 4.5], [5.5, 6.5], [7.5, 8.5]])
    np.testing.assert_array_equal(read_csv(q, target="2")[1], [1.5, 3.5, 5.5, 7.5])
    for bad in ("0", "4", "-1", "label", "\u00b2"):
        with pytest.raises(
            DataError,
            match=rf"no header row, so --target takes a column number from 1 \(the first\) "
            rf"to 3 \(the last\), got '{bad}'",
        ):
            read_csv(q, target=bad)
    # The choice is named: the dataset records the column's number, default the last.
    assert load_dataset(str(q), task="classification", target="1").target == "1"
    assert load_dataset(str(q), task="regression").target == "3"


def test_csv_non_numeric_cell_names_row_and_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError, match=r"row 3, column 'b'.*'oops'"):
        read_csv(p)
    q = tmp_path / "e.csv"
    q.write_text("1,2,0\n3,,1\n")  # an empty cell counts too
    with pytest.raises(DataError, match=r"row 2, column 2"):
        read_csv(q)


def test_csv_ragged_rows(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,4\n")
    with pytest.raises(DataError, match=r"row 3 has 2 columns, expected 3"):
        read_csv(p)


def test_csv_missing_target_column_lists_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n")
    with pytest.raises(DataError, match=r"no target column 'label'.*a, b, y"):
        read_csv(p, target="label")
    with pytest.raises(DataError, match=r"no target column 'label'"):
        load_dataset(str(p), target="label")


@pytest.mark.parametrize("text", ["", "\n\n", "a,b,y\n"])
def test_csv_zero_rows(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(DataError, match="zero"):
        load_dataset(str(p))


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_csv_nan_inf_named_with_count_and_position(tmp_path, bad):
    p = tmp_path / "d.csv"
    rows = [f"{i},{i % 2}" for i in range(10)]
    rows[4] = f"{bad},0"
    rows[7] = f"{bad},1"
    p.write_text("x,y\n" + "\n".join(rows) + "\n")
    # Rows as every CSV error numbers them: the file's, the header being row 1.
    with pytest.raises(DataError, match=r"d\.csv: 2 cells are NaN or infinite, the first at "
                       r"row 6, column 'x': "):  # fmt: skip
        load_dataset(str(p))
    p.write_text("x,y\n1,0\n\n2,nan\n3,1\n")  # a blank line is not a row, but is counted
    with pytest.raises(DataError, match=r"1 cell is NaN or infinite, the first at row 4, "
                       r"column 'y': NaN, a missing value; backprop does not fill in"):  # fmt: skip
        load_dataset(str(p))


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("", r"row 3, column 'b': empty cell; backprop does not fill in missing values"),
        ("NA", r"row 3, column 'b': 'NA', a missing value; backprop does not fill in"),
        (
            "-inf",
            r"1 cell is NaN or infinite, the first at row 3, column 'b': -inf; inputs and "
            r"targets must be finite numbers",
        ),
        ("x7", r"row 3, column 'b': non-numeric value 'x7'"),
    ],
)
def test_csv_missing_values_are_named_as_such(tmp_path: Path, cell: str, message: str) -> None:
    p = tmp_path / "d.csv"
    p.write_text(f"a,b,y\n1,2,0\n3,{cell},1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(8)))
    with pytest.raises(DataError, match=message):
        load_dataset(str(p), target="y")


def test_nan_found_across_chunks(monkeypatch):
    monkeypatch.setattr(rows_module, "CHUNK_ELEMENTS", 8)  # 2 rows of 4 per chunk
    X = np.zeros((10, 4))
    X[7, 2] = np.nan
    X[9, 0] = np.inf
    with pytest.raises(DataError, match=r"2 NaN/inf values \(first at row 7, column 2"):
        preprocess.check_finite(X, "inputs", "src")


def test_one_class_only(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("x,y\n" + "".join(f"{i},4\n" for i in range(10)))
    # The label is shown as a plain number, not as numpy's repr "np.float64(4.0)".
    with pytest.raises(DataError, match=r"only one \(4(\.0)?\)"):
        load_dataset(str(p))
    with pytest.raises(DataError, match=r"only one \(4(\.0)?\)"):
        load_dataset(str(p), task="classification")


def test_task_inference_and_label_remapping(tmp_path):
    p = tmp_path / "d.csv"
    labels = [3, 7, 10, 7, 3, 10, 10, 3, 7, 3]
    p.write_text("x,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels)))
    ds = load_dataset(str(p), test_fraction=0)
    assert ds.task == "classification"
    np.testing.assert_array_equal(ds.classes, [3, 7, 10])
    # Row i has x = i, so each row's label can be checked against the file.
    expected = {3: 0, 7: 1, 10: 2}
    for x, yi in zip(ds.X_train[:, 0], ds.y_train, strict=True):
        assert yi == expected[labels[int(x)]]
    q = tmp_path / "r.csv"
    q.write_text("x,y\n" + "".join(f"{i},{i * 0.37}\n" for i in range(10)))
    assert load_dataset(str(q)).task == "regression"
    with pytest.raises(DataError, match="must be integers"):
        load_dataset(str(q), task="classification")
    with pytest.raises(DataError, match="unknown task"):
        load_dataset(str(q), task="clustering")


# ---------------------------------------------------------------------------------------
# NPY / NPZ


def test_npz_round_trip_both_layouts(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 3))
    y = np.arange(20) % 2
    np.savez(tmp_path / "a.npz", X=X, y=y)
    ds = load_dataset(str(tmp_path / "a.npz"), test_fraction=0.25)
    assert (len(ds.X_train), len(ds.X_test)) == (15, 5)
    # Every original row appears exactly once across the two parts.
    got = np.concatenate([ds.X_train, ds.X_test]).astype(np.float64)
    np.testing.assert_allclose(got[np.argsort(got[:, 0])], X[np.argsort(X[:, 0])], rtol=1e-6)
    np.savez(tmp_path / "b.npz", X_train=X[:15], y_train=y[:15], X_test=X[15:], y_test=y[15:])
    ds = load_dataset(str(tmp_path / "b.npz"))
    np.testing.assert_allclose(ds.X_test, X[15:], rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, y[15:])


def test_npz_with_pickled_object_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))  # runs on unpickling

    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = Evil(), Evil()
    np.savez(tmp_path / "evil.npz", X=obj, y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"evil\.npz"):
        load_dataset(str(tmp_path / "evil.npz"))
    assert not marker.exists()
    np.save(tmp_path / "evil.npy", obj, allow_pickle=True)
    with pytest.raises(DataError, match=r"evil\.npy"):
        load_dataset(str(tmp_path / "evil.npy"))
    assert not marker.exists()


def test_npz_wrong_keys_and_not_a_zip(tmp_path):
    np.savez(tmp_path / "k.npz", inputs=np.zeros((2, 2)))
    with pytest.raises(DataError, match="holds inputs"):
        load_dataset(str(tmp_path / "k.npz"))
    (tmp_path / "z.npz").write_bytes(b"<html>not a zip</html>")
    with pytest.raises(DataError, match=r"not a valid \.npz"):
        load_dataset(str(tmp_path / "z.npz"))


def test_label_length_differs_from_X(tmp_path):
    np.savez(tmp_path / "m.npz", X=np.zeros((5, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="5 input rows but 4"):
        load_dataset(str(tmp_path / "m.npz"))


def test_npz_zero_rows(tmp_path):
    np.savez(tmp_path / "e.npz", X=np.zeros((0, 3)), y=np.zeros(0))
    with pytest.raises(DataError, match="zero rows"):
        load_dataset(str(tmp_path / "e.npz"))


def test_npy_is_memory_mapped_and_last_column_is_target(tmp_path):
    rng = np.random.default_rng(4)
    table = np.column_stack([rng.normal(size=(30, 3)), rng.normal(size=30)]).astype(np.float32)
    np.save(tmp_path / "t.npy", table)
    ds = load_dataset(str(tmp_path / "t.npy"), test_fraction=0)
    # Streamed, not read into memory: rows of the memory map, read batch by batch.
    assert isinstance(ds.X_train, Rows) and isinstance(ds.X_train.base, np.memmap)
    assert ds.task == "regression"
    np.testing.assert_array_equal(ds.X_train, table[:, :3])
    np.testing.assert_array_equal(ds.y_train, table[:, 3])
    with pytest.raises(DataError, match="2-D array"):
        np.save(tmp_path / "v.npy", np.zeros(5))
        load_dataset(str(tmp_path / "v.npy"))


def test_unknown_name_and_extension(tmp_path):
    with pytest.raises(DataError, match="neither a known dataset"):
        load_dataset("cifar-100")
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(DataError, match="unsupported file type"):
        load_dataset(str(tmp_path / "x.txt"))


# ---------------------------------------------------------------------------------------
# Bundled datasets


def test_digits():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load_dataset("digits", test_fraction=0.2, seed=0)
    assert ds.task == "classification" and ds.image_shape == (8, 8) and ds.n_classes == 10
    assert len(ds.X_train) + len(ds.X_test) == 1797 and ds.n_features == 64
    # Raw pixels 0..16 as scikit-learn gives them; the model's preprocessor divides by 16.
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 16.0 and ds.input_scale == 16.0
    # Stratified: 359 = round(0.2 * 1797) test images, each class within one of its share.
    counts = np.bincount(ref.target)
    assert len(ds.X_test) == 359
    assert np.all(np.abs(np.bincount(ds.y_test) - 0.2 * counts) < 1)
    # Every row is an original image with its original label.
    ref_rows = {tuple(r): t for r, t in zip(ref.data, ref.target, strict=True)}
    for x, yi in zip(ds.X_test.astype(np.float64), ds.y_test, strict=True):
        assert ref_rows[tuple(x)] == yi


def test_diabetes():
    from sklearn.datasets import load_diabetes

    ref = load_diabetes(scaled=False)
    ds = load_dataset("diabetes")
    assert ds.task == "regression" and ds.classes is None and ds.n_outputs == 1
    assert len(ds.X_train) + len(ds.X_test) == 442 and ds.n_features == 10
    assert ds.feature_names == list(ref.feature_names)
    total = np.concatenate([ds.y_train, ds.y_test]).astype(np.float64).sum()
    np.testing.assert_allclose(total, ref.target.sum(), rtol=1e-6)
    with pytest.raises(DataError, match="regression set"):
        load_dataset("diabetes", task="classification")


BUNDLED = {
    "digits": ("load_digits", {}),
    "diabetes": ("load_diabetes", {"scaled": False}),
}


def _sklearn_bunch(name: str) -> Any:
    import sklearn.datasets

    function, options = BUNDLED[name]
    return getattr(sklearn.datasets, function)(**options)


@pytest.mark.parametrize("name", sorted(BUNDLED))
@pytest.mark.parametrize("read_files", [True, False], ids=["files", "sklearn"])
def test_bundled_sets_are_scikit_learns_element_for_element(
    name: str, read_files: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read from scikit-learn's data files, and through scikit-learn itself when they are
    # not where this version keeps them: either way exactly what its loader gives.
    if not read_files:
        monkeypatch.setattr(named, "sklearn_data_file", lambda filename: None)
    ref = _sklearn_bunch(name)
    # No split and float64: every row in the file's order, at scikit-learn's precision.
    ds = load_dataset(name, test_fraction=0, dtype=np.float64)
    assert ds.X_train.dtype == ref.data.dtype == np.float64
    np.testing.assert_array_equal(ds.X_train, ref.data)
    assert ds.feature_names == list(ref.feature_names)
    if ds.task == "classification":
        np.testing.assert_array_equal(ds.classes, np.unique(ref.target))
        np.testing.assert_array_equal(ds.classes[ds.y_train], ref.target)
    else:
        assert ds.y_train.dtype == ref.target.dtype
        np.testing.assert_array_equal(ds.y_train, ref.target)


def test_bundled_sets_load_without_importing_scikit_learn() -> None:
    # scikit-learn's datasets module imports pandas and scipy: most of a digits run's start.
    code = (
        "import sys\n"
        "from backprop.data import load_dataset\n"
        "load_dataset('digits'), load_dataset('diabetes')\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_bundled_file_of_another_layout_falls_back_to_scikit_learn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file where this version's should be, but not its shape (a column fewer): not parsed
    # as if it were, scikit-learn's own loader answers.
    with gzip.open(tmp_path / "digits.csv.gz", "wt") as f:
        f.write("\n".join(",".join(["1"] * 64) for _ in range(1797)))
    monkeypatch.setattr(named, "sklearn_data_file", lambda filename: tmp_path / filename)
    ds = load_dataset("digits", test_fraction=0, dtype=np.float64)
    np.testing.assert_array_equal(ds.X_train, _sklearn_bunch("digits").data)


# ---------------------------------------------------------------------------------------
# Split


def test_split_deterministic_stratified_and_complete():
    y = np.repeat([0, 1, 2], [10, 20, 5])
    X = np.arange(len(y), dtype=float)[:, None]
    a = train_val_split(X, y, 0.2, seed=5)
    b = train_val_split(X, y, 0.2, seed=5)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    c = train_val_split(X, y, 0.2, seed=6)
    assert not np.array_equal(a[1], c[1])
    X_tr, X_val, y_tr, y_val = a
    np.testing.assert_array_equal(np.bincount(y_val), [2, 4, 1])  # 0.2 * (10, 20, 5)
    np.testing.assert_array_equal(np.sort(np.concatenate([X_tr, X_val])[:, 0]), X[:, 0])
    np.testing.assert_array_equal(y[X_tr[:, 0].astype(int)], y_tr)  # rows keep their labels


def test_split_every_class_in_both_parts_when_possible():
    y = np.array([0] * 30 + [1, 1] + [2])  # class 2 has a single row: training only
    _, _, y_tr, y_val = train_val_split(np.zeros((33, 1)), y, 0.1)
    assert set(y_val) == {0, 1} and set(y_tr) == {0, 1, 2}


def test_split_unstratified_and_edge_fractions():
    X, y = np.zeros((10, 2)), np.linspace(0, 1, 10)
    X_tr, X_val, y_tr, y_val = train_val_split(X, y, 0.3, stratify=False)
    assert len(X_val) == 3 and len(X_tr) == 7
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_val])), y)
    X_tr, X_val, _, y_val = train_val_split(X, y, 0.0)
    assert X_val.shape == (0, 2) and y_val.shape == (0,) and len(X_tr) == 10
    for f in (-0.1, 1.0):
        with pytest.raises(DataError, match="val_fraction"):
            train_val_split(X, y, f)


# ---------------------------------------------------------------------------------------
# Preprocessor


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_preprocessor_per_feature_matches_numpy(monkeypatch, dtype):
    monkeypatch.setattr(rows_module, "CHUNK_ELEMENTS", 50)  # force many chunks: 10 rows of 5
    rng = np.random.default_rng(7)
    X = (rng.normal(size=(103, 5)) * [1, 10, 0.1, 3, 1] + [5, -2, 0, 100, 7]).astype(dtype)
    X[:, 4] = 7  # a constant feature: scale 1, standardised to 0
    pre = Preprocessor.fit(X)
    X64 = X.astype(np.float64)
    ref_std = X64.std(axis=0)
    ref_std[4] = 1.0
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pre.mean, X64.mean(axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(pre.scale, ref_std, rtol=tol)
    assert pre.standardization == "per-feature"
    Z = pre.transform(X, dtype)
    assert Z.dtype == dtype and Z.flags.c_contiguous and Z is not X
    np.testing.assert_allclose(Z, (X64 - X64.mean(axis=0)) / ref_std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(Z[:, 4], 0)


@pytest.mark.parametrize("pixel_mean", [True, False])
def test_preprocessor_images_one_global_scale(tmp_path, pixel_mean):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(50, 4, 5), dtype=np.uint8)
    images[:, 0, :] = 0  # a black border row: per-pixel scaling would blow it up
    images[0, 0, 0] = 1  # ... and a near-constant pixel
    np.save(tmp_path / "x.npy", images.reshape(50, 20))
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    pre = Preprocessor.fit(mm, input_scale=255.0, image_shape=(4, 5), per_feature_mean=pixel_mean)
    pixels = images.reshape(50, 20).astype(np.float64) / 255.0
    mean = pixels.mean(axis=0) if pixel_mean else np.array([pixels.mean()])
    kind = "per-feature mean, global scale" if pixel_mean else "global"
    assert pre.standardization == kind and pre.scale.shape == (1,)
    np.testing.assert_allclose(pre.mean, mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pre.scale[0], pixels.std(), rtol=1e-12)  # about the grand mean
    expected = (pixels - mean) / pixels.std()
    for same in (images, images.reshape(50, 20), images.astype(np.float64), mm):
        np.testing.assert_allclose(pre.transform(same, np.float64), expected, atol=1e-12)
    # No huge values from a near-constant pixel's tiny scale (per-pixel scaling gives ~7).
    assert np.ptp(pre.transform(images)[:, :5]) < 0.1
    np.testing.assert_array_equal(pre.raw_min, [0]) and np.testing.assert_array_equal(
        pre.raw_max, [images.max()]
    )


def test_preprocessor_without_standardisation_only_divides():
    X = np.array([[0, 8, 16], [4, 4, 4]], dtype=np.float64)
    pre = Preprocessor.fit(X, input_scale=16.0, standardize=False)
    assert pre.standardization == "none"
    np.testing.assert_array_equal(pre.transform(X, np.float64), X / 16)


def test_preprocessor_round_trips_through_json():
    import json

    X = np.random.default_rng(0).normal(size=(20, 3))
    pre = Preprocessor.fit(X, feature_names=["a", "b", "c"])
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(again.transform(X), pre.transform(X))
    assert again.feature_names == ("a", "b", "c")
    with pytest.raises(DataError, match="lacks n_features"):
        Preprocessor.from_dict({})
    with pytest.raises(DataError, match="unknown field"):
        Preprocessor.from_dict({**pre.to_dict(), "x_mean": [0.0]})
    with pytest.raises(DataError, match="scale must be positive"):
        Preprocessor.from_dict({**pre.to_dict(), "scale": [1.0, 0.0, 1.0]})
    with pytest.raises(DataError, match="mean must have 1 or 3 values"):
        Preprocessor.from_dict({**pre.to_dict(), "mean": [0.0, 0.0]})


def test_preprocessor_refuses_bad_input():
    pre = Preprocessor.fit(np.zeros((4, 3)) + np.arange(3))
    with pytest.raises(DataError, match="expects 3 features per row, input has 4"):
        pre.transform(np.zeros((2, 4)))
    with pytest.raises(DataError, match="2 NaN/inf values"):
        pre.transform(np.array([[np.nan, 0, 0], [0, np.inf, 0]]))
    with pytest.raises(DataError, match="2-D"):
        pre.transform(np.zeros(3))
    with pytest.raises(DataError, match="not numeric"):
        pre.transform(np.array([["a", "b", "c"]]))


def test_preprocessor_warns_once_naming_the_expected_range():
    import warnings

    digits = np.random.default_rng(0).integers(0, 17, size=(30, 64)).astype(np.float64)
    pre = Preprocessor.fit(digits, input_scale=16.0, image_shape=(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pre.transform(digits[:3])  # in range: silent
    for wrong in (digits / 16, digits * 255):
        with pytest.warns(UserWarning, match=r"training range 0\.\.16") as caught:
            pre.transform(wrong)
        assert len(caught) == 1 and "\n" not in str(caught[0].message)
    tab = Preprocessor.fit(np.column_stack([np.linspace(19, 79, 20), np.tile([1.0, 2.0], 10)]),
                           feature_names=["age", "sex"])  # fmt: skip
    with pytest.warns(UserWarning, match=r"feature 'sex' \(column 2\) lie in -0\.05\.\."):
        tab.transform(np.array([[0.05, -0.05], [-0.05, 0.05]]))


def test_select_columns_by_name():
    pre = Preprocessor(n_features=3, feature_names=("a", "b", "c"))
    table = np.array([[3.0, 1.0, 9.0, 2.0]])
    np.testing.assert_array_equal(pre.select_columns(table, ["c", "a", "label", "b"]), [[1, 2, 3]])
    np.testing.assert_array_equal(pre.select_columns(table[:, :3], None), [[3, 1, 9]])
    unnamed = Preprocessor(n_features=3)
    for header in (
        ["label", "p1", "p2", "p3"],
        ["Unnamed: 0", "p1", "p2", "p3"],
        ["", "x", "y2", "z"],
    ):
        np.testing.assert_array_equal(unnamed.select_columns(table, header), [table[0, 1:]])
    with pytest.raises(DataError, match=r"has 4 columns.*expects 3"):
        unnamed.select_columns(table, None)
    with pytest.raises(DataError, match=r"has 4 columns .4 after.*expects 3"):
        unnamed.select_columns(table, ["p0", "p1", "p2", "p3"])
    with pytest.raises(DataError, match=r"lacks the model's column.s. c"):
        pre.select_columns(table[:, :3], ["a", "b", "z"])


# ---------------------------------------------------------------------------------------
# Labels


def test_label_encoder():
    enc = LabelEncoder().fit(np.array(["b", "a", "c", "a"]))
    np.testing.assert_array_equal(enc.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(enc.transform(["c", "a"]), [2, 0])
    np.testing.assert_array_equal(enc.inverse_transform([1, 2]), ["b", "c"])
    unsorted = LabelEncoder(np.array([10, 3, 7]))  # the model's output order is kept
    np.testing.assert_array_equal(unsorted.transform([7, 10, 3]), [2, 0, 1])
    with pytest.raises(
        DataError, match=r"^test labels 4, 5 are not among the classes \(10, 3, 7\)$"
    ):
        unsorted.transform([4, 7, 5], what="test labels")
    with pytest.raises(DataError, match="different kinds"):
        unsorted.transform(["a"])


def test_label_encoder_takes_strings_in_an_object_array():
    # pandas and scikit-learn hand labels over as object arrays of str.
    enc = LabelEncoder().fit(np.array(["one", "two"]))
    np.testing.assert_array_equal(enc.transform(np.array(["two", "one"], dtype=object)), [1, 0])
    with pytest.raises(DataError, match="different kinds"):
        enc.transform(np.array([1, "one"], dtype=object))


def test_named_sets_know_whether_a_mirrored_image_keeps_its_class(tmp_path):
    # Clothes mirrored are the same clothes; a mirrored digit is not the same digit; a file
    # says nothing (None: augmentation with flip is not second-guessed).
    for name, expected in (("fashion-mnist", True), ("mnist", False)):
        make_idx_dir(tmp_path / name)
        assert load_dataset(name, data_dir=tmp_path / name).mirror_symmetric is expected
    assert load_dataset("digits").mirror_symmetric is False
    np.save(tmp_path / "x.npy", np.arange(12.0).reshape(4, 3) % 2)
    assert load_dataset(str(tmp_path / "x.npy")).mirror_symmetric is None


# --------------------------------------------------------------------------------------
# Real tables (issue 28): scikit-learn's sets written as users have them


def _sklearn_csv(path: Path, loader: str, label: str, *, first: bool) -> Path:
    """A scikit-learn set as a CSV with a header: string labels in column ``label``,
    first (after an id column ``patient`` = p0, p1, ...) or last."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    labels = bunch.target_names[bunch.target]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient", label, *names] if first else [*names, label])
        for i, (x, c) in enumerate(zip(bunch.data.tolist(), labels, strict=True)):
            w.writerow([f"p{i}", c, *x] if first else [*x, c])
    return path


@pytest.mark.parametrize("loader", ["load_iris", "load_wine", "load_breast_cancer"])
def test_string_labels_first_or_last_train_with_their_names(tmp_path: Path, loader: str) -> None:
    import sklearn.datasets

    names = getattr(sklearn.datasets, loader)().target_names
    last = load_dataset(str(_sklearn_csv(tmp_path / "last.csv", loader, "class", first=False)))
    assert last.task == "classification" and last.target == "class"
    assert list(last.classes) == sorted(names)
    path = _sklearn_csv(tmp_path / "first.csv", loader, "species", first=True)
    # A label-first file without --target: refused in one line listing the columns (it
    # used to train a regression on the last column).
    with pytest.raises(DataError, match=r"which column is the target\?.*columns: patient, species"):
        load_dataset(str(path))
    # The id column is text: refused, naming the flag that drops it.
    with pytest.raises(DataError, match=r"'patient' \('p0', \.\.\.\) hold text.*--drop patient"):
        load_dataset(str(path), target="species")
    ds = load_dataset(str(path), target="species", drop=["patient"])
    assert list(ds.classes) == sorted(names)
    assert ds.feature_names == last.feature_names
    assert ds.provenance() == {"dataset": str(path), "target": "species", "drop": ["patient"]}
    np.testing.assert_array_equal(ds.X_train, last.X_train)  # same split, same rows


def test_a_label_first_column_named_label_is_the_target(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("Label,a,b\nyes,1,2\nno,3,4\nyes,5,6\nno,7,8\nyes,9,1\n")
    ds = load_dataset(str(p), test_fraction=0)
    assert ds.target == "Label" and list(ds.classes) == ["no", "yes"]
    assert ds.feature_names == ["a", "b"]
    q = tmp_path / "two.csv"
    q.write_text("y,label,a\n1,x,2\n0,z,3\n")
    with pytest.raises(DataError, match="several columns are named like a target"):
        load_dataset(str(q))


def test_headerless_rows_with_text_labels_are_data_not_a_header(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("5.1,3.5,setosa\n4.9,3.0,setosa\n6.2,2.9,virginica\n")
    table = read_csv_columns(p)
    assert table.header is None and len(table.values) == 3
    assert list(table.text[2]) == ["setosa", "setosa", "virginica"]
    X, y, names = read_csv(p)
    assert names is None and X.shape == (3, 2) and y.tolist() == ["setosa", "setosa", "virginica"]


def test_boolean_labels_and_evaluation_every_row(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2 == 0}\n" for i in range(50)))
    ds = load_dataset(str(p))
    assert list(ds.classes) == ["False", "True"] and len(ds.X_test) == 10
    ev = load_dataset(str(p), every_row=True)
    assert len(ev.X_test) == 50  # every row scored, nothing held back for training


def test_a_npy_of_images_without_labels_says_to_use_an_npz(tmp_path: Path) -> None:
    images = np.zeros((5, 8, 8), np.uint8)
    np.save(tmp_path / "imgs.npy", images)
    with pytest.raises(DataError, match=r"imgs\.npy: holds images of shape \(5, 8, 8\) and no "
                       r"labels: .*np\.savez\('data\.npz', X=images, y=labels\)"):  # fmt: skip
        load_dataset(str(tmp_path / "imgs.npy"))
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(DataError, match=r"must be a 2-D array .* got shape \(5,\)"):
        load_dataset(str(tmp_path / "flat.npy"))
    # What the message says to do works: the same images with labels, as an .npz.
    np.savez(tmp_path / "data.npz", X=images, y=np.arange(5) % 2)
    assert load_dataset(str(tmp_path / "data.npz")).image_shape == (8, 8)
