from pathlib import Path

import pytest

from posecore.errors import InputError
from posecore.sheet import read_video_sheet

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "videos.schema.yaml"


def test_session_columns_are_read_with_their_types_and_defaults(tmp_path):
    sheet = tmp_path / "videos.tsv"
    sheet.write_text(
        "video\tpath\tsession\tcamera\tframe_offset\na-top\ta.mp4\ta\ttop\t3\na-back\tb.mp4\ta\tback\t\nm\tm.mp4\n"
    )
    table = read_video_sheet(sheet, SCHEMA)
    assert table["frame_offset"].tolist() == [3, 0, 0]
    assert table["session"].tolist() == ["a", "a", ""] and table["rig"].tolist() == ["", "", ""]


def test_a_frame_offset_that_is_not_a_count_names_row_and_column(tmp_path):
    sheet = tmp_path / "videos.tsv"
    sheet.write_text("video\tpath\tsession\tcamera\tframe_offset\na-top\ta.mp4\ta\ttop\tsoon\n")
    with pytest.raises(InputError, match=r"videos.tsv \(row 2\): column frame_offset: 'soon' is not of type 'integer'"):
        read_video_sheet(sheet, SCHEMA)
    sheet.write_text("video\tpath\tsession\tcamera\tframe_offset\na-top\ta.mp4\ta\ttop\t-2\n")
    with pytest.raises(InputError, match=r"column frame_offset: -2 is less than the minimum of 0"):
        read_video_sheet(sheet, SCHEMA)
