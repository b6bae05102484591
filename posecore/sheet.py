"""The video sheet: which videos a workflow processes, read and checked before any job.

A tab-separated file with columns `video` (a unique name), `path` (the file), and optional
`labeling` and `refine` (booleans: true/false, yes/no, 1/0, empty for false) and any columns a
multi-camera rig adds. Lines starting with `#` are comments. Every error names the sheet and
the row as a spreadsheet shows it (the header is row 1), and what is wrong: a row that breaks
the sheet's JSON schema, a name used twice, a video file that does not exist.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from posecore.errors import InputError

BOOLEAN_COLUMNS = ("labeling", "refine")
INTEGER_COLUMNS = ("frame_offset",)
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


def read_video_sheet(path: str | Path, schema: str | Path | Mapping[str, Any]) -> pd.DataFrame:
    """The sheet as a table indexed by video name, each row checked against `schema`.

    Args:
        path: the sheet (TSV).
        schema: its JSON schema (a file or a mapping): the columns' types and defaults.

    Returns:
        One row per video, in the sheet's order, with its defaults filled in and the booleans
        parsed; column `row` holds each video's row number in the file (the header is row 1).

    Raises:
        InputError: naming the sheet, the row and the column or value that is wrong.
    """
    path = Path(path)
    schema = _schema(schema)
    if not path.is_file():
        raise InputError(path, "video sheet not found")
    with open(path, newline="") as file:
        lines = [(number, line) for number, line in enumerate(file, start=1) if line.strip()]
    lines = [(number, line) for number, line in lines if not line.lstrip().startswith("#")]
    # No line at all, or a header alone: no videos yet (labels can still be assembled and trained on).
    columns = next(csv.reader([lines[0][1].rstrip("\r\n")], delimiter="\t")) if lines else ["video", "path"]
    if lines and not {"video", "path"} <= set(columns):
        missing = sorted({"video", "path"} - set(columns))
        raise InputError(path, f"the header has no column {', '.join(missing)} (found: {', '.join(columns)})", "row 1")
    rows = []
    for number, line in lines[1:]:
        values = next(csv.reader([line.rstrip("\r\n")], delimiter="\t"))
        if len(values) > len(columns):
            raise InputError(path, f"{len(values)} fields, the header has {len(columns)}", where=f"row {number}")
        row = dict(zip(columns, [*values, *[""] * (len(columns) - len(values))], strict=True))
        for column in BOOLEAN_COLUMNS:
            if column in row:
                # Anything else stays a string, which the schema then refuses, naming the column.
                row[column] = BOOLEANS.get(row[column].strip().lower(), row[column])
        for column in INTEGER_COLUMNS:
            if column in row and row[column].strip().lstrip("-").isdigit():
                row[column] = int(row[column])  # anything else stays a string for the schema to refuse
        _check_row(row, schema, path, number)
        rows.append({**row, "row": number})
    table = pd.DataFrame(rows, columns=[*_with_defaults(columns, schema), "row"])
    repeated = table[table["video"].duplicated(keep=False)]
    if not repeated.empty:
        first = repeated.iloc[0]
        others = ", ".join(str(r) for r in repeated[repeated["video"] == first["video"]]["row"])
        raise InputError(path, f"video name {first['video']!r} is used more than once (rows {others})")
    return table.set_index("video", drop=False)


def check_video_files(sheet: pd.DataFrame, path: str | Path) -> None:
    """Refuse a sheet naming a video file that does not exist (or is not a file), naming its row.

    Raises:
        InputError: naming the sheet, the first such row, its video and its path, and how many
            rows have the same problem.
    """
    missing = [row for row in sheet.itertuples() if not Path(row.path).is_file()]
    if missing:
        first = missing[0]
        what = "a folder, not a video file" if Path(first.path).is_dir() else "no such file"
        more = f" (and {len(missing) - 1} more rows)" if len(missing) > 1 else ""
        raise InputError(path, f"video {first.video!r}: {first.path}: {what}{more}", where=f"row {first.row}")


def _schema(schema: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(schema, Mapping):
        return schema
    return yaml.safe_load(Path(schema).read_text())


def _with_defaults(columns: list[str], schema: Mapping[str, Any]) -> list[str]:
    """The sheet's columns and the schema's columns with defaults, in that order."""
    extra = [name for name, spec in schema.get("properties", {}).items() if "default" in spec and name not in columns]
    return [*columns, *extra]


def _check_row(row: dict[str, Any], schema: Mapping[str, Any], path: Path, number: int) -> None:
    """Check one row against the schema in place, filling in defaults; the first error names the column."""
    for name, spec in schema.get("properties", {}).items():
        if "default" in spec and row.get(name, "") == "":
            row[name] = spec["default"]
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(row), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        column = error.path[0] if error.path else None
        if column is None and error.validator == "required":
            message = error.message  # "'path' is a required property"
        else:
            message = f"column {column}: {error.message}"
        raise InputError(path, message, where=f"row {number}")
