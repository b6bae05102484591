import pandas as pd
import pytest

from posecore.infer.single import infer_video
from posecore.io.video import VideoError, probe
from posecore.models import load_model
from posecore.predict import Predictor

from .conftest import KEYPOINTS, ffmpeg_frames


def test_one_video_range_in_one_file_with_several_decoders(video, model_path, tmp_path, one_torch_thread):
    info = probe(video)
    loaded = load_model(model_path)
    out = tmp_path / "dot.parquet"
    n_rows = infer_video(video, info, loaded, out, start=3, stop=20, decoders=3, batch_size=4, progress=False)
    table = pd.read_parquet(out)
    assert n_rows == len(table) == 17 * len(KEYPOINTS)
    assert table.frame.tolist() == [f for f in range(3, 20) for _ in KEYPOINTS]
    expected = Predictor(loaded).predict(ffmpeg_frames(video)[3:20])
    assert abs(table[["x", "y", "score"]].to_numpy() - expected.reshape(-1, 3)).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["dot.parquet"]  # the scratch shards are gone


def test_a_corrupt_video_raises_its_own_error_and_writes_nothing(video, model_path, tmp_path):
    info = probe(video)
    broken = tmp_path / "broken.mp4"
    data = video.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        infer_video(broken, info, load_model(model_path), tmp_path / "out.parquet", decoders=2, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["broken.mp4"]
