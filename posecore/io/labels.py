"""Label files: read hand-labeled keypoints into one in-memory table, whatever the format.

`read_labels(path)` is the one factory for label formats. It dispatches on the file's suffix
through `READERS`, a plain dict from suffix to reader; each reader turns one file into a
`LabelTable` (with an `ImageSource` that finds and loads each row's image) and raises
`InputError` naming the file (and the row, frame or key) for bad input.

Formats read today:

- DeepLabCut CSV (`.csv`): three header rows (scorer, bodyparts, coords) and either one
  image-path column (`labeled-data/<video>/img0001.png`) or, as DeepLabCut >= 2.2 writes it,
  three index columns (`labeled-data`, `<video>`, `img0001.png`). Lightning Pose's
  `CollectedData.csv` is the same format. Multi-animal DeepLabCut adds a fourth header row,
  `individuals`, after scorer: every individual names the same body parts (an individual
  with none of them labeled in a row is not in that frame), except the individual "single",
  whose body parts are the scene's unique body parts.
- DeepLabCut HDF5 (`.h5`, `.hdf5`): the same table written by `pandas.to_hdf` (key
  `df_with_missing`), with either row-index layout and either column layout.
- SLEAP (`.slp`, also `.pkg.slp` with embedded images): `posecore.io.sleap_labels`.
- COCO keypoints (`.json`): `posecore.io.coco_labels`.

To add a format: write `read_<format>(path) -> LabelTable` in a module of its own
(`posecore/io/<format>_labels.py`, building on `posecore.io.label_table`), give it an
`ImageSource` (`ImageFiles` when the images are files), add its suffixes to `READERS` here, and
add `tests/io/test_<format>_labels.py`: a test that reads a file written by the format's own
tool or library and checks the numbers against what was written, and a test that a malformed
file of that format raises an `InputError` naming the file.

Row numbers in messages ("row 12") count labeled rows from 0, in file order, the header not
counted: the same numbering for every format.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from posecore.errors import InputError
from posecore.io.coco_labels import read_coco
from posecore.io.label_table import ImageFiles, LabelTable, frame_index, require_file, resolve_image
from posecore.io.sleap_labels import read_slp

__all__ = [
    "READERS",
    "LabelTable",
    "frame_index",
    "read_coco",
    "read_dlc_csv",
    "read_dlc_h5",
    "read_labels",
    "read_slp",
    "resolve_image",
]

HEADER_ROWS = ("scorer", "bodyparts", "coords")
MULTI_HEADER_ROWS = ("scorer", "individuals", "bodyparts", "coords")
UNIQUE_INDIVIDUAL = "single"
"""Multi-animal DeepLabCut's individual that holds the unique body parts (the scene's, not an animal's)."""
DLC_H5_KEY = "df_with_missing"


def read_labels(path: str | Path) -> LabelTable:
    """Read a label file of any known format (see `READERS`), chosen by its suffix.

    Raises:
        InputError: the file is missing, its format is unknown (the message lists the known
            suffixes), or it is malformed.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(f"{suffix} ({fn.__name__})" for suffix, fn in READERS.items())
        raise InputError(path, f"unknown label format {path.suffix or '(no suffix)'!r}; known formats: {known}")
    return reader(path)


def read_dlc_csv(path: str | Path) -> LabelTable:
    """Read a DeepLabCut label CSV, with a one-column or a three-column row index.

    Raises:
        InputError: the file is missing or empty, its header rows are not scorer / bodyparts /
            coords (or scorer / individuals / bodyparts / coords, multi-animal), or a value is
            not a number (naming the row and the column).
    """
    path = Path(path)
    require_file(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            head = list(itertools.islice(csv.reader(stream), len(MULTI_HEADER_ROWS)))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(path, f"not a readable DeepLabCut label CSV ({error})") from error
    if not head or not any(cell.strip() for cell in head[0]):
        raise InputError(path, "the label file is empty")
    first_cells = tuple(row[0].strip() if row else "" for row in head)
    header = MULTI_HEADER_ROWS if first_cells[1:2] == ("individuals",) else HEADER_ROWS
    if first_cells[: len(header)] != header:
        raise InputError(
            path,
            f"expected DeepLabCut header rows {', '.join(HEADER_ROWS)} (or {', '.join(MULTI_HEADER_ROWS)}); "
            f"the first column reads {list(first_cells[: len(header)])}",
            where="header",
        )
    # Index columns: the first header row has the word "scorer" then one blank cell per extra index column.
    n_index = 1
    while n_index < len(head[0]) and not head[0][n_index].strip():
        n_index += 1
    try:
        frame = pd.read_csv(path, header=list(range(len(header))), index_col=list(range(n_index)))
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(path, f"not a readable DeepLabCut label CSV ({error})") from error
    return _table_from_frame(path, frame)


def read_dlc_h5(path: str | Path) -> LabelTable:
    """Read a DeepLabCut label HDF5 file (pandas/PyTables), with either row-index layout.

    The row index is one image path per row, or DeepLabCut >= 2.2's MultiIndex
    (labeled-data, video, image), which is joined with "/".

    Raises:
        InputError: the file is missing, not a pandas HDF5 file, holds several tables none of
            which is `df_with_missing`, or holds something other than a label table.
    """
    path = Path(path)
    require_file(path)
    if not h5py.is_hdf5(path):
        raise InputError(path, "not a readable pandas HDF5 label file (no HDF5 signature)")
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = [key.lstrip("/") for key in store.keys()]
            key = DLC_H5_KEY if DLC_H5_KEY in keys or not keys else keys[0]
            if len(keys) > 1 and DLC_H5_KEY not in keys:
                raise InputError(path, f"several tables ({', '.join(keys)}) and none is named {DLC_H5_KEY!r}")
            frame = store.get(key) if keys else None
    except (OSError, TypeError, KeyError, RuntimeError) as error:  # PyTables' HDF5ExtError is a RuntimeError
        raise InputError(path, f"not a readable pandas HDF5 label file ({error})") from error
    if frame is None:
        raise InputError(path, "the label file holds no pandas table")
    if not isinstance(frame, pd.DataFrame):
        raise InputError(path, f"expected a DeepLabCut label table, found a {type(frame).__name__}")
    return _table_from_frame(path, frame)


READERS: dict[str, Callable[[str | Path], LabelTable]] = {
    ".csv": read_dlc_csv,
    ".h5": read_dlc_h5,
    ".hdf5": read_dlc_h5,
    ".slp": read_slp,
    ".json": read_coco,
}


def _table_from_frame(path: Path, frame: pd.DataFrame) -> LabelTable:
    """A DLC-layout DataFrame (columns scorer / bodyparts / coords, or with individuals) to a `LabelTable`."""
    if frame.columns.nlevels == len(MULTI_HEADER_ROWS):
        return _multi_table_from_frame(path, frame)
    if frame.columns.nlevels != len(HEADER_ROWS):
        raise InputError(
            path, f"expected {len(HEADER_ROWS)} column levels ({', '.join(HEADER_ROWS)}), got {frame.columns.nlevels}"
        )
    scorer = _one_scorer(path, frame)
    names = tuple(dict.fromkeys(str(b) for b in frame.columns.get_level_values(1)))
    if len(frame) == 0:
        raise InputError(path, "the label file has a header but no labeled rows")
    columns = [(scorer, name, coord) for name in names for coord in ("x", "y")]
    values = _values(path, frame, columns, lambda column: f"keypoint {column[1]!r}")
    return _label_table(path, frame, names, values.reshape(len(frame), len(names), 2), scorer)  # (N, K, 2) (x, y)


def _label_table(path: Path, frame: pd.DataFrame, names: tuple[str, ...], keypoints: np.ndarray, scorer: str,
                 **multi_animal) -> LabelTable:  # fmt: skip
    """The `LabelTable` of a DLC DataFrame's rows (image paths from its index), with `multi_animal`'s fields."""
    image_paths = tuple(_join_index(entry) for entry in frame.index)
    return LabelTable(path, image_paths, names, keypoints, scorer, ImageFiles(path, image_paths), **multi_animal)


def _multi_table_from_frame(path: Path, frame: pd.DataFrame) -> LabelTable:
    """A multi-animal DLC DataFrame (scorer / individuals / bodyparts / coords) to a multi-animal `LabelTable`."""
    scorer = _one_scorer(path, frame)
    individuals = list(dict.fromkeys(str(i) for i in frame.columns.get_level_values(1)))
    animals = [name for name in individuals if name != UNIQUE_INDIVIDUAL]
    if not animals:
        raise InputError(path, f"no individual besides {UNIQUE_INDIVIDUAL!r} (unique body parts)", where="header")
    parts = {name: tuple(dict.fromkeys(str(c[2]) for c in frame.columns if str(c[1]) == name)) for name in individuals}
    names = parts[animals[0]]
    for name in animals[1:]:
        if parts[name] != names:
            raise InputError(
                path,
                f"individual {name!r} has body parts {list(parts[name])}, individual {animals[0]!r} has "
                f"{list(names)}: every individual must name the same body parts, in the same order",
                where="header",
            )
    unique = parts.get(UNIQUE_INDIVIDUAL, ())
    if len(frame) == 0:
        raise InputError(path, "the label file has a header but no labeled rows")
    columns = [(scorer, animal, name, coord) for animal in animals for name in names for coord in ("x", "y")]
    columns += [(scorer, UNIQUE_INDIVIDUAL, name, coord) for name in unique for coord in ("x", "y")]
    values = _values(path, frame, columns, lambda column: f"individual {column[1]!r} keypoint {column[2]!r}")
    n, n_animal_values = len(frame), len(animals) * len(names) * 2
    keypoints = values[:, :n_animal_values].reshape(n, len(animals), len(names), 2)  # (N, I, K, 2) (x, y)
    present = np.isfinite(keypoints).all(axis=-1).any(axis=-1)  # (N, I)
    tracks = np.where(present, np.array(animals, dtype=object), "").astype(object)  # (N, I)
    unique_keypoints = values[:, n_animal_values:].reshape(n, len(unique), 2) if unique else None  # (N, U, 2)
    return _label_table(
        path, frame, names, keypoints, scorer, tracks=tracks, unique_names=unique, unique_keypoints=unique_keypoints
    )


def _one_scorer(path: Path, frame: pd.DataFrame) -> str:
    """The single scorer of a DLC table (first column level), after checking that coords are x and y only."""
    scorers = list(dict.fromkeys(str(s) for s in frame.columns.get_level_values(0)))
    if len(scorers) != 1:
        raise InputError(path, f"expected one scorer, found {scorers}", where="header")
    coords = {str(c) for c in frame.columns.get_level_values(-1)}
    repeated = sorted(c for c in coords if re.fullmatch(r"[xy]\.\d+", c))  # pandas renames a repeated column x -> x.1
    if repeated:
        column = next(c for c in frame.columns if str(c[-1]) == repeated[0])
        what = f"individual {column[1]!r} keypoint {column[2]!r}" if len(column) == 4 else f"keypoint {column[1]!r}"
        raise InputError(path, f"{what} appears twice in the header (column {column[-1]!r})", where="header")
    if coords - {"x", "y"}:
        raise InputError(
            path, f"coords must be x and y, found {sorted(coords - {'x', 'y'})} (a predictions file?)", where="header"
        )
    return scorers[0]


def _values(
    path: Path, frame: pd.DataFrame, columns: list[tuple[str, ...]], describe: Callable[[tuple[str, ...]], str]
) -> np.ndarray:
    """float32 (N, len(columns)) values of `columns` (each must appear once), NaN where empty.

    `describe(column)` names a column's keypoint in messages; the coordinate (x or y) is its last part.
    """
    for column in columns:
        matches = int(sum(tuple(map(str, c)) == column for c in frame.columns))
        if matches != 1:
            what = "no" if matches == 0 else f"{matches}"
            raise InputError(path, f"{describe(column)} has {what} {column[-1]!r} columns", where="header")
    frame = frame.set_axis([tuple(map(str, c)) for c in frame.columns], axis=1)[columns]
    values = frame.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().to_numpy() & frame.notna().to_numpy()
    if bad.any():
        i, j = (int(a[0]) for a in np.nonzero(bad))
        column = columns[j]
        where = " ".join(column[1:])
        raise InputError(path, f"{where} is {frame.iat[i, j]!r}, not a number", where=f"row {i}")
    array = values.to_numpy(dtype=np.float32)  # (N, C)
    if np.isinf(array).any():
        i, j = (int(a[0]) for a in np.nonzero(np.isinf(array)))
        raise InputError(path, f"{' '.join(columns[j][1:])} is infinite", where=f"row {i}")
    return array


def _join_index(entry: object) -> str:
    """One row-index entry (a path, or a tuple such as (labeled-data, video, image)) as one path."""
    parts = entry if isinstance(entry, tuple) else (entry,)
    return "/".join(str(part) for part in parts if not (isinstance(part, float) and np.isnan(part)))
