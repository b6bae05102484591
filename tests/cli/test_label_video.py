import numpy as np
import torch

from posecore.cli import main
from posecore.io.video import probe, read_frame_array
from posecore.models import ModelMeta, build_model, save_model
from posecore.qc.clips import keypoint_colors


def save_tiny_model(path, names, skeleton):
    torch.manual_seed(0)
    hyperparameters = {"growth_rate": 4, "n_transitions": 1, "n_stacks": 1}
    network = build_model("stacked_densenet", len(names), 3, **hyperparameters).eval()
    meta = ModelMeta("stacked_densenet", hyperparameters, names, (48, 64), 3, (0.0,) * 3, (255.0,) * 3, 4)
    save_model(path, network, ModelMeta(**{**meta.__dict__, "skeleton": skeleton}))
    return path


def edge_pixel(path, frame: int, x: float, y: float) -> np.ndarray:
    return read_frame_array(path, [frame])[0, round(y), round(x)].astype(np.float64)


def test_label_video_draws_the_models_skeleton_over_a_frame_range(grey_video_with_track, tmp_path, capsys):
    video, trajectories, peaks = grey_video_with_track()
    # The model lists the keypoints in another order than the file: colours follow the model's.
    model = save_tiny_model(tmp_path / "model.pt", ("c", "a", "b"), ((1, 2),))  # skeleton a-b
    out = tmp_path / "out" / "labeled.mp4"
    argv = ["label-video", str(video), str(trajectories), str(out), "--model", str(model), "--quiet", "--crf", "0"]
    assert main([*argv, "--start", "4", "--stop", "12", "--trail", "3", "--no-frame-number", "--radius", "3"]) == 0
    assert f"frames [4, 12) labeled in {out}" in capsys.readouterr().out
    info = probe(out)
    assert (info.n_frames, info.width, info.height, info.codec) == (8, 64, 48, "h264")
    colors = np.asarray(keypoint_colors(3), dtype=np.float64)
    frame = read_frame_array(out, [0])[0].astype(np.float64)
    x = round(float(peaks[4, 0, 0]))
    np.testing.assert_allclose(frame[8, x], colors[1], atol=20)  # "a" in the model's second colour
    # The edge a-b runs down column x from row 8 to row 20, at b's opacity (0.7); the exact
    # colour is draw_frame's test, here yuv420p shares colour between 2x2 pixels.
    edge = (colors[1].astype(int) + colors[2].astype(int)) // 2 * 0.7 + 128 * 0.3
    assert np.linalg.norm(frame[14, x] - edge) < np.linalg.norm(frame[14, x] - 128) / 2
    assert np.abs(frame[14, x + 8] - 128).max() <= 3, "no edge where the skeleton has none"


def test_label_video_with_edges_given_and_bad_input_exits_2_naming_the_file(grey_video_with_track, tmp_path, capsys):
    video, trajectories, _ = grey_video_with_track(track_frames=31)
    out = tmp_path / "labeled.mp4"
    assert main(["label-video", str(video), str(trajectories), str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"posecore: error: {trajectories}: holds frames 0..30, but {video} has 30 frames")
    video, trajectories, _ = grey_video_with_track()
    assert main(["label-video", str(video), str(trajectories), str(out), "--edge", "a", "paw", "--quiet"]) == 2
    assert "skeleton edge ('a', 'paw') names 'paw'" in capsys.readouterr().err
    assert main(["label-video", str(video), str(trajectories), str(out), "--preset", "quick", "--quiet"]) == 2
    assert "unknown preset 'quick'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["label-video", str(video), str(trajectories), str(out), "--edge", "a", "c", "--quiet"]) == 0
    assert probe(out).n_frames == 30
