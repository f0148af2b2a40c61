"""CSV tables: the one CSV reader, typed columns, the header rule and the target rule.

A CSV is read once into a `CsvTable` (numbers parsed into one array, text columns kept as
strings beside it); `choose_target` and `split_target` then decide which column the
network learns, never silently (a column named like a target, or ``--target``), and
refuse text input columns in one line (``--drop`` removes them). The same header rule
serves ``train``, ``evaluate`` and ``predict``. Errors are `DataError` naming the file.
"""

from __future__ import annotations

import csv
import itertools
import math
import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from backprop._memory import check_fits
from backprop.checks import whole_number
from backprop.data.formats import DataError, MissingColumnError

__all__ = [
    "INDEX_COLUMNS",
    "LABEL_COLUMNS",
    "CsvTable",
    "choose_target",
    "is_index_column",
    "read_csv",
    "read_csv_columns",
    "read_csv_table",
    "split_target",
]

#: Header names (compared lower-case, stripped) of a target column: never an input, and
#: the target when ``--target`` is not given.
LABEL_COLUMNS = ("target", "label", "y", "class")
#: Header names of an index column (pandas writes ``Unnamed: 0``; also an empty name).
INDEX_COLUMNS = ("", "id", "index")


def is_index_column(name: str) -> bool:
    """Whether a CSV header name is a row index (``id``, ``index``, ``Unnamed: 0``, empty)."""
    key = name.strip().lower()
    return key in INDEX_COLUMNS or key.startswith("unnamed:")


def _parse_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _is_text(cell: str) -> bool:
    """A cell that is text: not a number and not empty (an empty cell is a missing number)."""
    return bool(cell.strip()) and _parse_float(cell) is None


def _column_name(header: list[str] | None, j: int) -> str:
    return repr(header[j]) if header is not None else str(j + 1)


# What a missing value's error says to do (an empty cell, NaN).
_NO_IMPUTING = "backprop does not fill in missing values: fill them in or remove those rows"

# How spreadsheets, R and pandas write a missing value (pandas reads these as NaN), named
# as such in the error for a numeric column ("nan" itself parses as a float: NaN).
_MISSING_MARKERS = frozenset({"NA", "N/A", "n/a", "#N/A", "<NA>", "NULL", "null", "None", "?"})


def _not_finite(
    path: Path, values: np.ndarray, numeric: list[int], lines: np.ndarray, header: list[str] | None
) -> DataError | None:
    """The error naming the count and the first NaN/inf cell of the numeric columns, by
    the file's row number and the column's name as every other cell error does; None if
    every cell is finite."""
    bad = ~np.isfinite(values[:, numeric])
    count = int(bad.sum())
    if not count:
        return None
    k, jj = (int(i) for i in np.argwhere(bad)[0])
    value = float(values[k, numeric[jj]])
    if math.isnan(value):
        what = f"NaN, a missing value; {_NO_IMPUTING}"
    else:
        what = f"{value}; inputs and targets must be finite numbers"
    cells = f"{count} cells are" if count > 1 else "1 cell is"
    return DataError(
        f"{path}: {cells} NaN or infinite, the first at row {int(lines[k])}, column "
        f"{_column_name(header, numeric[jj])}: {what}"
    )


def _bad_cell(
    path: Path, line: int, row: list[str], header: list[str] | None, dtype: np.dtype[Any]
) -> DataError:
    """The error naming the first cell of ``row`` that is not a number of ``dtype``."""
    for j, cell in enumerate(row):
        value = _parse_float(cell)
        col = _column_name(header, j)
        if value is None and not cell.strip():
            return DataError(f"{path}: row {line}, column {col}: empty cell; {_NO_IMPUTING}")
        if value is None and cell.strip() in _MISSING_MARKERS:
            return DataError(
                f"{path}: row {line}, column {col}: {cell.strip()!r}, a missing value; "
                f"{_NO_IMPUTING}"
            )
        if value is None:
            return DataError(f"{path}: row {line}, column {col}: non-numeric value {cell!r}")
        if math.isfinite(value) and abs(value) > float(np.finfo(dtype).max):
            return DataError(
                f"{path}: row {line}, column {col}: value {cell!r} is too large for "
                f"{dtype.name} (largest {float(np.finfo(dtype).max):.4g})"
            )
    return DataError(f"{path}: row {line}: not a row of numbers")  # pragma: no cover


def _is_integer_text(cell: str) -> bool:
    return cell.strip().lstrip("+-").isdigit()


def _is_position_header(first: list[str], second: list[str] | None) -> bool:
    """Whether an all-number first row is pandas' header of integer column names.

    ``DataFrame.to_csv`` names unnamed columns 0, 1, ..., w-1, so the header reads as
    numbers.  A first row that is exactly those names is taken as a header; with one or
    two columns ("0" or "0,1" is also a plausible row of data) only when the next row is
    written differently (a cell that is not an integer, such as ``0.25``).
    """
    if [c.strip() for c in first] != [str(j) for j in range(len(first))]:
        return False
    if len(first) >= 3:
        return True
    return second is not None and not all(_is_integer_text(c) for c in second)


def _is_header(first: list[str], second: list[str] | None) -> bool:
    """The one rule, for every command, of whether a CSV's first row names its columns.

    A header: pandas' integer names (`_is_position_header`); or a row of text only; or a
    row with text above a number (a name over its column). A row whose text cells sit
    over text (``setosa`` above ``versicolor``) is data with a text column.
    """
    if _is_position_header(first, second):
        return True
    text = [_is_text(c) for c in first]
    if second is None or all(text):
        return any(text)
    return any(t and _parse_float(c) is not None for t, c in zip(text, second, strict=False))


def _count_lines(path: Path) -> int:
    """Physical lines of a file (a last line without a newline counts), read in chunks."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


@dataclass
class CsvTable:
    """A CSV file's columns: numbers in one array, text columns beside it.

    Attributes
    ----------
    values : ndarray of shape (n, w)
        Every column as numbers; a text column's entries are NaN here.
    header : list of str of length w, or None
        Column names (stripped), None without a header row.
    text : dict of int to ndarray of shape (n,), str
        The text columns by position: those whose first data cell is text (``setosa``,
        ``p0``, ``True``).
    path : Path
        The file, named in error messages.
    """

    values: np.ndarray
    header: list[str] | None
    text: dict[int, np.ndarray]
    path: Path

    def name(self, j: int) -> str:
        """Column ``j`` as a message names it: ``'species'``, or ``3`` without a header."""
        return _column_name(self.header, j)

    def refuse_text(self, columns: Iterable[int]) -> None:
        """Refuse, in one line naming them, text columns among ``columns`` (inputs must
        be numbers: the model's preprocessor is a linear map, page 1's x in R^d)."""
        bad = [j for j in columns if j in self.text]
        if not bad:
            return
        names = ", ".join(f"{self.name(j)} ({str(self.text[j][0])!r}, ...)" for j in bad)
        how = (
            " ".join(f"--drop {self.header[j]}" for j in bad)
            if self.header is not None
            else "a header row and --drop"
        )
        raise DataError(
            f"{self.path}: input column(s) {names} hold text, not numbers; drop them "
            f"({how}) or encode them as numbers"
        )

    def columns(self, drop: Sequence[str] = ()) -> list[int]:
        """Positions of the columns that may be inputs or the target: all but index
        columns (``id``, ``Unnamed: 0``) and those named in ``drop``.

        Raises
        ------
        DataError
            ``drop`` without a header, or naming a column the file lacks.
        """
        keep = list(range(self.values.shape[1]))
        if self.header is None:
            if drop:
                raise DataError(f"{self.path}: cannot drop columns by name: no header row")
            return keep
        missing = [c for c in drop if c not in self.header]
        if missing:
            raise DataError(
                f"{self.path}: no column {', '.join(map(repr, missing))} to drop; columns: "
                f"{', '.join(self.header)}"
            )
        return [
            j for j in keep if not is_index_column(self.header[j]) and self.header[j] not in drop
        ]

    def column(self, j: int) -> np.ndarray:
        """Column ``j``: its text (str array) for a text column, else a copy of its numbers."""
        return self.text[j] if j in self.text else self.values[:, j].copy()


def read_csv_columns(path: str | os.PathLike[str], dtype: DTypeLike = np.float32) -> CsvTable:
    """Read a CSV file: numeric columns parsed straight into one array, text kept as text.

    Whether the first row is a header is `_is_header`'s one rule. A column whose first data
    cell is text (not a number, not empty) is a text column, kept as strings; every other
    cell must be a number. The numbers are parsed into one preallocated array of ``dtype``,
    one row at a time, so memory stays within about twice the file's size (a float32 per
    cell, and a cell takes at least two bytes of text); the array's size is checked
    against the memory available first.

    Parameters
    ----------
    path : str or PathLike
    dtype : float dtype, default float32
        The values' type (the network's dtype: parsing into float64 and casting later
        would need three times the memory).

    Returns
    -------
    CsvTable
        ``values`` of shape (n, w), ``header``, the ``text`` columns.

    Raises
    ------
    DataError
        Missing file, no data rows, a non-numeric cell in a numeric column (row and column
        named), ragged rows, or more values than fit in memory.
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    try:
        n_lines = _count_lines(path)
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows: Iterator[tuple[int, list[str]]] = (
                (i, row) for i, row in enumerate(csv.reader(f), start=1) if row
            )
            first = next(rows, None)
            if first is None:
                raise DataError(f"{path}: empty CSV file (zero rows)")
            header: list[str] | None = None
            second = next(rows, None)
            if _is_header(first[1], None if second is None else second[1]):
                header = [c.strip() for c in first[1]]
                first = second
                if first is None:
                    raise DataError(f"{path}: CSV file has a header but zero data rows")
            elif second is not None:
                rows = itertools.chain([second], rows)
            width = len(header) if header is not None else len(first[1])
            check_fits(n_lines * width * dtype.itemsize, f"{path}: {n_lines} rows", DataError)
            values = np.empty((n_lines, width), dtype=dtype)
            lines = np.empty(n_lines, np.int64)  # each row's number in the file, for errors
            text_cols = [j for j, c in enumerate(first[1]) if _is_text(c)]
            texts: list[list[str]] = [[] for _ in text_cols]
            numeric = [j for j in range(width) if j not in set(text_cols)]
            # Only a table with text columns pays for picking cells one by one.
            pick = operator.itemgetter(*numeric) if text_cols and numeric else None
            k = 0
            for line, row in itertools.chain([first], rows):
                if len(row) != width:
                    raise DataError(
                        f"{path}: row {line} has {len(row)} columns, expected {width} (ragged rows)"
                    )
                try:
                    with np.errstate(over="raise"):
                        if not text_cols:
                            values[k] = row
                        elif pick is not None:
                            values[k, numeric] = pick(row)
                except (ValueError, FloatingPointError):
                    cells = [row[j] if j in set(numeric) else "0" for j in range(width)]
                    raise _bad_cell(path, line, cells, header, dtype) from None
                for cells, j in zip(texts, text_cols, strict=True):
                    cells.append(row[j].strip())
                lines[k] = line
                k += 1
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path}: is a directory, expected a CSV file") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV text file ({exc})") from exc
    values = values[:k]  # fewer rows than lines (blank lines, quoted newlines): a view
    if (error := _not_finite(path, values, numeric, lines, header)) is not None:
        raise error
    values[:, text_cols] = np.nan
    text = {j: np.array(cells, dtype=str) for j, cells in zip(text_cols, texts, strict=True)}
    return CsvTable(values, header, text, path)


def read_csv_table(
    path: str | os.PathLike[str], dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric CSV file: every column, with its header when there is one.

    `read_csv_columns`, refusing text columns (one line naming them).

    Returns
    -------
    values : ndarray of shape (n, w), of ``dtype``
    header : list of str of length w, or None
    """
    table = read_csv_columns(path, dtype)
    table.refuse_text(table.text)
    return table.values, table.header


def choose_target(table: CsvTable, target: str | None, keep: Sequence[int]) -> int:
    """The target column's position: never a silent guess.

    ``target`` if given (without a header, a column number: 1 is the first, as messages
    number them); else, with a header, the one column named ``label``, ``target``, ``y``
    or ``class`` (any case), or a refusal listing the columns; without a header (or with
    pandas' integer names 0..w-1), the last column (as in a ``.npy`` file), which the
    caller names (`split_target`) so that the choice is never silent.

    Raises
    ------
    DataError
        A ``target`` the file lacks (without a header: not a column number), or no (or
        several) target-named columns.
    """
    path, header = table.path, table.header
    if header is None:
        if target is None:
            return keep[-1]
        width = table.values.shape[1]
        number = whole_number(target)
        if number is None or not 1 <= number <= width:
            raise DataError(
                f"{path}: the file has no header row, so --target takes a column number "
                f"from 1 (the first) to {width} (the last), got {target!r}"
            )
        return number - 1
    if target is not None:
        if target not in header:
            raise MissingColumnError(
                f"{path}: no target column {target!r}; available columns: {', '.join(header)}"
            )
        return header.index(target)
    if header == [str(j) for j in range(len(header))]:
        return keep[-1]  # pandas' 0..w-1 are no names: the headerless rule
    named = [j for j in keep if header[j].lower() in LABEL_COLUMNS]
    if len(named) == 1:
        return named[0]
    problem = (
        f"several columns are named like a target ({', '.join(header[j] for j in named)})"
        if named
        else f"no column is named {', '.join(LABEL_COLUMNS)}"
    )
    raise DataError(
        f"{path}: which column is the target? {problem}; pass --target COL (columns: "
        f"{', '.join(header)})"
    )


def split_target(
    table: CsvTable, target: str | None = None, drop: Sequence[str] = (), *, skip_text: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str] | None, str]:
    """A table's inputs and target (`choose_target`), index and ``drop`` columns left out.

    Parameters
    ----------
    table : CsvTable
    target : str, optional
        The target column's name (without a header, its number, 1 for the first).
    drop : sequence of str
        Columns left out (``--drop``).
    skip_text : bool, default False
        Leave text columns out of the inputs instead of refusing them (a file scored by
        a model, whose inputs are numbers matched by name).

    Returns
    -------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
        Numbers, or str labels from a text column.
    feature_names : list of str of length d, or None
    target : str
        The target column's name; without a header, its number (``"5"``: the fifth).

    Raises
    ------
    DataError
        As `choose_target`, fewer than 2 columns, a text input column (named, with the
        ``--drop`` that removes it), or an empty label.
    """
    path, header = table.path, table.header
    keep = table.columns(drop)
    if target is not None and header is not None and target in header and target not in keep:
        keep = sorted([*keep, header.index(target)])  # an index-named column asked for
    if len(keep) < 2:
        raise DataError(
            f"{path}: CSV needs at least 2 columns (inputs and a target), has {len(keep)}"
        )
    t = choose_target(table, target, keep)
    inputs = [j for j in keep if j != t and not (skip_text and j in table.text)]
    table.refuse_text(inputs)
    y = table.column(t)
    if y.dtype.kind == "U" and not np.all(y != ""):
        row = int(np.argmax(y == ""))
        raise DataError(f"{path}: data row {row + 1}, target column {table.name(t)}: empty label")
    names = [header[j] for j in inputs] if header is not None else None
    return table.values[:, inputs], y, names, str(t + 1) if header is None else header[t]


def read_csv(
    path: str | os.PathLike[str], target: str | None = None, dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read a CSV file into inputs and a target column (`split_target`).

    Parameters
    ----------
    path : str or PathLike
    target : str, optional
        Name of the target column (needs a header row).
    dtype : float dtype, default float32
        As `read_csv_columns`.

    Returns
    -------
    X : ndarray of shape (n, d), of ``dtype``
    y : ndarray of shape (n,), of ``dtype`` or str
    feature_names : list of str or None
        Header names of the d input columns, None without a header.
    """
    X, y, names, _ = split_target(read_csv_columns(path, dtype), target)
    return X, y, names
