import pytest

from posecore.errors import InputError
from posecore.threed.sheet import calibration_sources, sessions_of_sheet

RIGS = {"arena": {"cameras": {"back": "b/*.png", "top": "t/*.png", "side": "s.mp4"}}}


def _row(video, session="", camera="", offset=0, rig=""):
    return {
        "video": video,
        "path": f"{video}.mp4",
        "session": session,
        "camera": camera,
        "frame_offset": offset,
        "rig": rig,
    }


def test_single_camera_sheets_have_no_sessions():
    assert sessions_of_sheet([{"video": "m1", "path": "m1.mp4"}, _row("m2")], {}, "videos.tsv") == {}


def test_sessions_group_views_in_sheet_order_with_their_offsets():
    rows = [_row("a-top", "a", "top"), _row("m1"), _row("a-back", "a", "back", 4)]
    rows += [_row("b-top", "b", "top", rig="arena"), _row("b-side", "b", "side")]
    plans = sessions_of_sheet(rows, RIGS, "videos.tsv")
    assert list(plans) == ["a", "b"]
    assert plans["a"].rig == "arena"
    assert [(v.camera, v.video, v.offset) for v in plans["a"].views] == [("top", "a-top", 0), ("back", "a-back", 4)]


@pytest.mark.parametrize(
    ("rows", "rigs", "message"),
    [
        ([_row("a-top", "a", "top")], RIGS, r"session 'a' has one camera \(top\); 3D needs at least two"),
        ([_row("a-top", "a", "top"), _row("a-t2", "a", "top")], RIGS, r"session 'a' has camera\(s\) \['top'\] twice"),
        ([_row("a-top", "a", "top"), _row("a-x", "a")], RIGS, r"videos \['a-x'\] of session 'a' name no camera"),
        ([_row("a-top", "", "top")], RIGS, "video 'a-top' names a camera but no session"),
        ([_row("a-top", "a", "top"), _row("a-b", "a", "back")], {**RIGS, "other": RIGS["arena"]},
         r"session 'a' names no rig, and the config has 2"),
        ([_row("a-top", "a", "top", rig="nope"), _row("a-b", "a", "back")], RIGS, r"no rig 'nope' in the config"),
        ([_row("a-top", "a", "top"), _row("a-f", "a", "front")], RIGS, r"rig 'arena' has cameras .*, not \['front'\]"),
    ],
)  # fmt: skip
def test_bad_sessions_are_named(rows, rigs, message):
    with pytest.raises(InputError, match=message):
        sessions_of_sheet(rows, rigs, "videos.tsv")


def test_calibration_sources_expand_globs_in_natural_order(tmp_path):
    for name in ("img10.png", "img2.png", "img1.png"):
        (tmp_path / name).write_bytes(b"")
    rig = {"cameras": {"a": str(tmp_path / "img*.png"), "b": "calib/b.mp4", "c": str(tmp_path / "none*.png")}}
    sources = calibration_sources(rig)
    assert [p.rsplit("/", 1)[1] for p in sources["a"]] == ["img1.png", "img2.png", "img10.png"]
    assert sources["b"] == "calib/b.mp4"
    assert sources["c"] == [str(tmp_path / "none*.png")]
