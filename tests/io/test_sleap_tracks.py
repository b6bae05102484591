from pathlib import Path

import numpy as np
import pytest

from posecore.errors import InputError
from posecore.io import trajectories
from posecore.io.sleap_tracks import read_slp_instances, write_slp

sio = pytest.importorskip("sleap_io")
MOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sleap-mot-2mice"


def test_proofread_tracks_read_as_sleap_io_gives_them() -> None:
    path = MOT / "proofread.slp"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    found = read_slp_instances(path, n_frames=97)
    labels = sio.load_slp(str(path), open_videos=False)
    assert found.xy.shape == (97, 2, 15, 2) and found.present.sum() == 173
    for labeled in labels.labeled_frames:
        for i, instance in enumerate(labeled.instances):
            np.testing.assert_array_equal(found.xy[labeled.frame_idx, i], instance.numpy())
            assert found.track[labeled.frame_idx, i] == instance.track.name
            assert found.instance_score[labeled.frame_idx, i] == pytest.approx(instance.score)
    with pytest.raises(InputError, match="has frame 96, but the video has 50 frames"):
        read_slp_instances(path, n_frames=50)


def test_written_tracks_open_in_sleap_io_with_their_points_and_names(tmp_path: Path) -> None:
    peaks = np.random.default_rng(0).uniform(0, 100, (3, 2, 2, 3))  # (F, I, K, 3)
    peaks[2, 1] = np.nan
    tracks = np.array([["track_0", "track_1"]] * 3, dtype=object)
    tracks[2, 1] = ""
    table = trajectories.instances_table(np.arange(3), np.arange(3) / 30, peaks, ("nose", "tail"),
                                         np.array([[0.9, 0.8]] * 3), tracks)  # fmt: skip
    path = tmp_path / "tracks.slp"
    write_slp(table, path, video=tmp_path / "v.mp4", skeleton=[("nose", "tail")], video_shape=(3, 100, 100, 1))
    labels = sio.load_slp(str(path), open_videos=False)
    assert [t.name for t in labels.tracks] == ["track_0", "track_1"]
    assert labels.skeletons[0].node_names == ["nose", "tail"] and len(labels.skeletons[0].edges) == 1
    assert [len(lf.instances) for lf in labels.labeled_frames] == [2, 2, 1]
    back = read_slp_instances(path)
    np.testing.assert_allclose(back.xy, peaks[..., :2])
    np.testing.assert_allclose(back.score[back.present], peaks[..., 2][back.present])
    assert back.track.tolist() == tracks.tolist()
