import itertools

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from posecore.errors import InputError
from posecore.infer.job import Video, check_keypoints, run_job
from posecore.infer.plan import Shard
from posecore.infer.shards import shard_path
from posecore.io.trajectories import read_provenance
from posecore.io.video import VideoError, probe
from posecore.models import ModelMeta, build_model, load_model, save_model
from posecore.predict import Predictor

from .conftest import HEIGHT, KEYPOINTS, WIDTH, ffmpeg_frames, make_model


def shards_of(name, n_frames, length):
    bounds = [*range(0, n_frames, length), n_frames]
    return [Shard(name, i, a, b) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


@pytest.fixture
def job(video, other_video):
    videos = {"dot": Video(video, probe(video)), "other": Video(other_video, probe(other_video))}
    shards = shards_of("dot", videos["dot"].info.n_frames, 6) + shards_of("other", videos["other"].info.n_frames, 5)
    return shards, videos


def rows(predictions, shard):
    return pq.read_table(shard_path(predictions, shard)).to_pandas()


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, H, W, 3) black frames with a red and a blue Gaussian blob, and (n, K=2, 2) their centres (x, y).

    `readout_model` sees one pixel of each 4x4 cell, the cell's first: a blob is drawn on those
    pixels alone, around cell (i, j) with its centre (i + dx, j + dy) in map cells, so that the
    point a user expects is its centre in image pixels, (4 (i + dx) + 1.5, 4 (j + dy) + 1.5)
    (a cell covers 4 pixels, pixel centres at integers). Every frame has its own cells (one
    cell, 4 px, from the frame before), subpixel offsets (0.15 to 0.4 cells either way) and
    brightness, so that a frame's points cannot pass for another's.
    """
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, HEIGHT, WIDTH, 3), dtype=np.uint8)
    centres = np.zeros((n, 2, 2))
    for f in range(n):
        for k, (channel, i) in enumerate(((0, 1 + f % 5), (2, 14 - f % 5))):  # the head red, the tail blue
            j = 1 + (f // 5 + 3 * k) % 10
            dx, dy = rng.uniform(0.15, 0.4, 2) * rng.choice([-1, 1], 2)
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    value = (150 + 4 * f) * np.exp(-((di - dx) ** 2 + (dj - dy) ** 2) / 2)
                    frames[f, 4 * (j + dj), 4 * (i + di), channel] = round(value)
            centres[f, k] = 4 * (i + dx) + 1.5, 4 * (j + dy) + 1.5
    return frames, centres


@pytest.fixture(scope="module")
def readout_model(tmp_path_factory):
    """A colour readout whose head map is the red and tail map the blue of each 4x4 cell's first pixel, / 255."""
    model = build_model("colour_readout", 2, 3).eval()
    with torch.no_grad():
        model.readout.weight.zero_()
        model.readout.weight[0, 0] = model.readout.weight[1, 2] = 1.0  # (K, C, 1, 1)
        model.readout.bias.zero_()
    meta = ModelMeta("colour_readout", {}, KEYPOINTS, (HEIGHT, WIDTH), 3, (0.0,) * 3, (255.0,) * 3, 4)
    path = tmp_path_factory.mktemp("readout") / "model.pt"
    save_model(path, model, meta)
    return path


@pytest.fixture(scope="module")
def blob_videos(tmp_path_factory, encode_h264):
    """Two lossless videos of `blobs` (21 frames at 30 fps, a keyframe every 8; 13 at 25 fps, every 4)."""
    folder = tmp_path_factory.mktemp("blobs")
    videos = {}
    for name, n, fps, gop, seed in (("a", 21, 30, 8, 1), ("b", 13, 25, 4, 2)):
        frames, centres = blobs(n, seed)
        path = encode_h264(frames, folder / f"{name}.mp4", fps=fps, gop=gop, crf=0)
        videos[name] = (Video(path, probe(path)), centres)
    return videos


def test_every_shard_holds_each_frames_known_points_for_exactly_its_frames(
    blob_videos, readout_model, tmp_path, one_torch_thread
):
    videos = {name: video for name, (video, _) in blob_videos.items()}
    shards = shards_of("a", 21, 6) + shards_of("b", 13, 5)
    results = run_job(
        shards, videos, readout_model, tmp_path, batch_size=4, decoders=2, config={"k": 1}, progress=False
    )
    assert [r.shard for r in results] == shards and {r.status for r in results} == {"done"}
    for name, (video, centres) in blob_videos.items():
        n = video.info.n_frames
        table = pd.concat([rows(tmp_path, s) for s in shards if s.video == name])
        assert table["frame"].tolist() == np.repeat(np.arange(n), 2).tolist()
        assert table["keypoint"].astype(str).tolist() == list(KEYPOINTS) * n
        assert np.allclose(table["time_s"], np.repeat(np.arange(n), 2) / video.info.fps)
        # Within 0.25 px of each blob's centre (the blobs are rounded to uint8: 0.06 px at most
        # here); a point of the frame before or after would be 4 px off.
        points = table[["x", "y"]].to_numpy().reshape(n, 2, 2)
        assert np.abs(points - centres).max() < 0.25, np.abs(points - centres).max()
        # The score is the peak cell's pixel as ffmpeg itself decodes the frame.
        decoded = ffmpeg_frames(video.path)
        i, j = np.round((centres - 1.5) / 4).astype(int).transpose(2, 0, 1)  # (2, n, K): each blob's cell
        peak_pixels = decoded[np.arange(n)[:, None], 4 * j, 4 * i, [0, 2]]  # (n, K): red head, blue tail
        np.testing.assert_allclose(table["score"].to_numpy().reshape(n, 2), peak_pixels / 255, atol=1e-6)
    provenance = read_provenance(shard_path(tmp_path, shards[0]))
    assert provenance["config"] == {"k": 1} and provenance["decoder"] == "ffmpeg"
    assert provenance["model_hash"] == load_model(readout_model).sha256


@pytest.mark.gpu
def test_a_job_on_the_gpu_runs_model_and_kernel_there_and_gives_the_cpus_points(
    blob_videos, readout_model, tmp_path, peak_finder_calls, monkeypatch
):
    import posecore.infer.job

    predictors = []

    class Recorded(Predictor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            predictors.append(self)

    monkeypatch.setattr(posecore.infer.job, "Predictor", Recorded)
    videos = {name: video for name, (video, _) in blob_videos.items()}
    shards = shards_of("a", 21, 6) + shards_of("b", 13, 5)
    run_job(shards, videos, readout_model, tmp_path / "cpu", device="cpu", batch_size=4, progress=False)
    peak_finder_calls.clear()
    # As the workflow runs it on a GPU: precision and compile "auto", that is bfloat16 and compiled.
    results = run_job(shards, videos, readout_model, tmp_path / "gpu", device="cuda", batch_size=4, progress=False)
    assert {r.status for r in results} == {"done"}
    gpu = predictors[-1]
    assert gpu.device.type == "cuda" and next(gpu.model.parameters()).is_cuda
    assert gpu.dtype == torch.bfloat16 and gpu.compiled, "compiled, not fallen back to eager"
    assert peak_finder_calls and set(peak_finder_calls) == {("triton", "cuda")}
    for shard in shards:
        on_cpu, on_gpu = rows(tmp_path / "cpu", shard), rows(tmp_path / "gpu", shard)
        assert on_gpu["frame"].tolist() == on_cpu["frame"].tolist()
        np.testing.assert_allclose(on_gpu[["x", "y"]].to_numpy(), on_cpu[["x", "y"]].to_numpy(), atol=0.05)
        np.testing.assert_allclose(on_gpu["score"].to_numpy(), on_cpu["score"].to_numpy(), atol=0.01)
    for name, (video, centres) in blob_videos.items():
        table = pd.concat([rows(tmp_path / "gpu", s) for s in shards if s.video == name])
        points = table[["x", "y"]].to_numpy().reshape(video.info.n_frames, 2, 2)
        assert np.abs(points - centres).max() < 0.25


def test_a_rerun_keeps_finished_shards_and_redoes_the_rest(job, model_path, tmp_path, one_torch_thread):
    shards, videos = job
    run_job(shards, videos, model_path, tmp_path, batch_size=4, progress=False)
    stamps = {s: shard_path(tmp_path, s).stat().st_mtime_ns for s in shards}
    lost = shards[1]
    shard_path(tmp_path, lost).unlink()  # as if the job had been killed before this shard ended
    results = run_job(shards, videos, model_path, tmp_path, batch_size=4, progress=False)
    assert [r.status for r in results] == ["done" if s == lost else "kept" for s in shards]
    assert all(shard_path(tmp_path, s).stat().st_mtime_ns == stamps[s] for s in shards if s != lost)
    # Another model, or the priors turned off: every shard is made again.
    other = make_model(tmp_path / "other.pt", seed=1)
    assert {r.status for r in run_job(shards[:2], videos, other, tmp_path, progress=False)} == {"done"}
    assert {r.status for r in run_job(shards[:2], videos, other, tmp_path, priors=False, progress=False)} == {"done"}


def test_a_corrupt_video_fails_its_shards_alone(job, model_path, tmp_path, other_video, one_torch_thread):
    shards, videos = job
    broken = tmp_path / "broken.mp4"
    data = other_video.read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])
    videos = {**videos, "other": Video(broken, videos["other"].info)}
    results = run_job(shards, videos, model_path, tmp_path / "p", batch_size=4, decoders=2, progress=False)
    failed = [r for r in results if r.status == "failed"]
    assert failed and all(r.shard.video == "other" for r in failed)
    assert all("VideoError" in r.error and "broken.mp4" in r.error for r in failed)
    assert isinstance(failed[0].exception, VideoError)
    assert all(r.status == "done" for r in results if r.shard.video == "dot")
    assert not [p for p in (tmp_path / "p").rglob("*") if p.name.startswith(".")]  # no temporary file left


def test_a_model_with_other_keypoints_is_refused_before_any_frame_is_read(model_path, tmp_path, video):
    never = {"x": Video(tmp_path / "never-opened.mp4", probe(video))}
    with pytest.raises(InputError, match=r"model\.pt.*\['head', 'tail'\].*\['head', 'nose'\]"):
        run_job([Shard("x", 0, 0, 5)], never, model_path, tmp_path, keypoints=["head", "nose"])
    meta = load_model(model_path).meta
    with pytest.raises(InputError, match="keypoint 0 is 'head', the config says 'tail'"):
        check_keypoints(meta, ["tail", "head"], model_path)
    check_keypoints(meta, ["head", "tail"], model_path)


def test_running_out_of_gpu_memory_halves_the_batch_and_loses_nothing(job, model_path, tmp_path, monkeypatch):
    shards, videos = job
    original = Predictor.predict
    sizes = []

    def predict(self, images):
        sizes.append(self.batch_size)
        if self.batch_size > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return original(self, images)

    monkeypatch.setattr(Predictor, "predict", predict)
    results = run_job(shards[:2], videos, model_path, tmp_path, batch_size=8, progress=False)
    assert {r.status for r in results} == {"done"} and sizes[:3] == [8, 4, 2]
    monkeypatch.setattr(Predictor, "predict", original)
    expected = Predictor(load_model(model_path)).predict(ffmpeg_frames(videos["dot"].path)[:12])
    got = np.concatenate([rows(tmp_path, s)[["x", "y", "score"]].to_numpy() for s in shards[:2]])
    assert np.allclose(got, expected.reshape(-1, 3), atol=1e-4)


@pytest.mark.slow
@pytest.mark.filterwarnings("error::RuntimeWarning")  # a failed compilation would warn and fall back
def test_a_compiled_model_gives_the_uncompiled_points(job, model_path, tmp_path, one_torch_thread):
    # A real inductor compilation of a tiny model (tens of seconds). Batches of 4 over shards of
    # 6 frames: every second batch is short, padded to the compiled shape and cut back.
    shards, videos = job
    runs = {}
    for compile in ("never", "always"):
        run_job(shards[:3], videos, model_path, tmp_path / compile, batch_size=4, compile=compile, progress=False)
        runs[compile] = np.concatenate([rows(tmp_path / compile, s).to_numpy() for s in shards[:3]])
    assert np.array_equal(runs["always"][:, :2], runs["never"][:, :2])
    assert np.allclose(runs["always"][:, 4:].astype(float), runs["never"][:, 4:].astype(float), atol=1e-3)


def test_a_failed_compilation_warns_and_runs_the_model_uncompiled(model_path, monkeypatch, one_torch_thread):
    def broken_compile(model, **kwargs):
        def run(x):
            raise RuntimeError("no C++ compiler found\nmore detail")

        return run

    monkeypatch.setattr("posecore.predict.torch.compile", broken_compile)
    loaded = load_model(model_path)
    images = np.random.default_rng(0).integers(0, 255, (3, HEIGHT, WIDTH, 3), dtype=np.uint8)
    predictor = Predictor(loaded, batch_size=4, compile="always")
    assert predictor.compiled
    with pytest.warns(RuntimeWarning, match="torch.compile failed .RuntimeError: no C.. compiler found.; running"):
        points = predictor.predict(images)
    assert not predictor.compiled
    assert np.allclose(points, Predictor(loaded, compile="never").predict(images), atol=1e-5)
