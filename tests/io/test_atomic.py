import os

import pytest

from posecore.io.atomic import atomic_path


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".csv" and tmp.name.startswith(".table.tmp-")
        tmp.write_text("new")
    assert target.read_text() == "new" and os.listdir(target.parent) == ["table.csv"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["table.csv"]


def test_a_killed_writers_temporary_file_goes_when_the_path_is_written_next(tmp_path):
    target = tmp_path / "table[1].csv"  # a name glob would read as a pattern
    stale = tmp_path / ".table[1].tmp-99999999.csv"  # left by a writer killed mid-write
    stale.write_text("half")
    other = tmp_path / ".table2.tmp-99999999.csv"  # another file's: not touched
    other.write_text("x")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, other.name])
