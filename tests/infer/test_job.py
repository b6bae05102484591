import itertools

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from posecore.errors import InputError
from posecore.infer.job import Video, check_keypoints, run_job
from posecore.infer.plan import Shard
from posecore.infer.shards import shard_path
from posecore.io.trajectories import read_provenance
from posecore.io.video import VideoError, probe
from posecore.models import load_model
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


def test_every_shard_holds_the_models_points_for_exactly_its_frames(job, model_path, tmp_path, one_torch_thread):
    shards, videos = job
    results = run_job(shards, videos, model_path, tmp_path, batch_size=4, decoders=2, config={"k": 1}, progress=False)
    assert [r.shard for r in results] == shards and {r.status for r in results} == {"done"}
    predictor = Predictor(load_model(model_path), batch_size=4)
    for name, video in videos.items():
        # The points the model gives on ffmpeg's own decode of the whole video, frame by frame.
        expected = predictor.predict(ffmpeg_frames(video.path))  # (N, K, 3)
        mine = [s for s in shards if s.video == name]
        table = np.concatenate([rows(tmp_path, s)[["frame", "time_s", "x", "y", "score"]].to_numpy() for s in mine])
        frames = np.repeat(np.arange(video.info.n_frames), len(KEYPOINTS))
        assert np.array_equal(table[:, 0], frames)
        assert np.allclose(table[:, 1], frames / video.info.fps)
        assert np.allclose(table[:, 2:], expected.reshape(-1, 3), atol=1e-4)
    provenance = read_provenance(shard_path(tmp_path, shards[0]))
    assert provenance["config"] == {"k": 1} and provenance["decoder"] == "ffmpeg"
    assert provenance["model_hash"] == load_model(model_path).sha256


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
