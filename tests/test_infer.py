import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from posecore.errors import InputError
from posecore.infer import (
    Shard,
    _Abandoned,
    _consume_in_background,
    _prefetch,
    check_keypoints,
    infer_shard,
    plan_shards,
    read_shard_plan,
    write_shard_plan,
)
from posecore.io.trajectories import read_provenance
from posecore.io.video import probe, read_frame_array
from posecore.models import ModelMeta, build_model, load_model, save_model
from posecore.predict import Predictor


@pytest.mark.parametrize(("n_frames", "size"), [(10, 3), (9, 3), (1, 5), (2330, 1000), (7, 7)])
def test_shards_cover_every_frame_once(n_frames, size):
    shards = plan_shards(n_frames, size)
    frames = [f for s in shards for f in range(s.start, s.stop)]
    assert frames == list(range(n_frames))
    assert all(0 < s.stop - s.start <= size for s in shards)
    assert [s.index for s in shards] == list(range(len(shards)))


def test_shard_plan_round_trip(tmp_path):
    shards = plan_shards(25, 10)
    write_shard_plan(shards, tmp_path / "v.tsv")
    assert read_shard_plan(tmp_path / "v.tsv") == shards == [Shard(0, 0, 10), Shard(1, 10, 20), Shard(2, 20, 25)]


def test_bad_shard_plan_is_named(tmp_path):
    (tmp_path / "v.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match=r"v\.tsv"):
        read_shard_plan(tmp_path / "v.tsv")
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards(10, 0)


def test_prefetch_keeps_order_and_reads_ahead():
    produced = []

    def source():
        for i in range(6):
            produced.append(i)
            yield i

    consumed = []
    for item in _prefetch(source(), depth=2):
        time.sleep(0.02)  # the model's turn: the reader has gone ahead meanwhile
        consumed.append((item, len(produced)))
    assert [item for item, _ in consumed] == list(range(6))
    assert consumed[0][1] >= 2, "the reader did not decode ahead of the consumer"


def test_prefetch_raises_the_readers_error_and_stops_the_thread():
    def source():
        yield 1
        raise InputError("v.mp4", "decode failed", where="frame 1")

    with pytest.raises(InputError, match="frame 1"):
        list(_prefetch(source()))
    assert not [t for t in threading.enumerate() if t.name == "posecore-decode"]


def test_prefetch_stops_when_the_consumer_stops_early():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    for item in _prefetch(endless()):
        if item == 3:
            break
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name == "posecore-decode" and t.is_alive()]


def test_background_consumer_gets_every_item_in_order_in_its_own_thread():
    seen = []

    def consume(items):
        for item in items:
            seen.append((item, threading.current_thread().name))
        return len(seen)

    assert _consume_in_background(iter(range(50)), consume, depth=3) == 50
    assert [item for item, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"posecore-write"}


def test_background_consumer_is_abandoned_when_producing_fails():
    ended = []

    def source():
        yield 1
        raise InputError("v.mp4", "decode failed", where="frame 1")

    def consume(items):
        try:
            return sum(items)
        except BaseException as error:
            ended.append(type(error))
            raise

    with pytest.raises(InputError, match="frame 1"):
        _consume_in_background(source(), consume)
    assert ended == [_Abandoned], "the consumer must see the failure (a writer then removes its temporary file)"
    assert not [t for t in threading.enumerate() if t.name == "posecore-write"]


def test_a_failing_consumer_stops_the_producer_and_its_error_is_raised():
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    def consume(items):
        for item in items:
            if item == 5:
                raise OSError("disk full")
        return 0

    with pytest.raises(OSError, match="disk full"):
        _consume_in_background(endless(), consume)
    assert closed == [True]


# --- infer_shard on a real (tiny) video and an exported model -----------------------------

N_FRAMES, HEIGHT, WIDTH = 21, 48, 64


@pytest.fixture(scope="module")
def video(tmp_path_factory, encode_h264):
    path = tmp_path_factory.mktemp("video") / "dot.mp4"
    frames = np.zeros((N_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i in range(N_FRAMES):
        frames[i, 10 + i : 14 + i, 5 + 2 * i : 9 + 2 * i] = 255
    return encode_h264(frames, path, fps=30, gop=8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    hyperparameters = {"growth_rate": 4, "n_transitions": 1, "n_stacks": 1}
    model = build_model("stacked_densenet", 2, 3, **hyperparameters).eval()
    meta = ModelMeta(
        "stacked_densenet", hyperparameters, ("head", "tail"), (HEIGHT, WIDTH), 3, (0.0,) * 3, (255.0,) * 3, 4
    )
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, model, meta)
    return path


def test_a_shard_gives_the_predictors_points_for_exactly_its_frames(video, model_path, tmp_path, one_torch_thread):
    info = probe(video)
    out = tmp_path / "shard-00001.parquet"
    n_rows = infer_shard(
        video, Shard(1, 7, 19), model_path, out, info=info, batch_size=5, config={"k": 1}, progress=False
    )
    table = pq.read_table(out).to_pandas()
    assert n_rows == len(table) == 12 * 2
    assert table.frame.tolist() == [f for f in range(7, 19) for _ in range(2)]
    assert np.allclose(table.time_s, table.frame / 30.0)
    loaded = load_model(model_path)
    expected = Predictor(loaded).predict(read_frame_array(video, np.arange(7, 19), info=info))  # (12, 2, 3)
    assert np.allclose(table[["x", "y", "score"]].to_numpy(), expected.reshape(-1, 3), atol=1e-4)
    provenance = read_provenance(out)
    assert provenance["model_hash"] == loaded.sha256 and provenance["config"] == {"k": 1}
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


def test_a_model_with_other_keypoints_is_refused_before_any_frame_is_read(video, model_path, tmp_path):
    missing_video = tmp_path / "never-opened.mp4"
    info = probe(video)  # of another video: the check comes before any reading
    with pytest.raises(InputError, match=r"model\.pt.*\['head', 'tail'\].*\['head', 'nose'\]"):
        infer_shard(
            missing_video, Shard(0, 0, 5), model_path, tmp_path / "x.parquet", info=info, keypoints=["head", "nose"]
        )
    assert not (tmp_path / "x.parquet").exists()
    meta = load_model(model_path).meta
    with pytest.raises(InputError, match="keypoint 0 is 'head', the config says 'tail'"):
        check_keypoints(meta, ["tail", "head"], model_path)
    check_keypoints(meta, ["head", "tail"], model_path)


def test_a_failing_decode_leaves_no_shard_file(video, model_path, tmp_path, one_torch_thread):
    info = probe(video)
    broken = tmp_path / "broken.mp4"
    data = video.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # truncated mid-stream: decoding stops early
    out = tmp_path / "shard.parquet"
    with pytest.raises(InputError):
        infer_shard(broken, Shard(0, 0, N_FRAMES), model_path, out, info=info, progress=False)
    assert list(tmp_path.iterdir()) == [broken]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a failed compilation would warn and fall back
def test_a_compiled_shard_gives_the_uncompiled_points(video, model_path, tmp_path, one_torch_thread):
    # A real inductor compilation of a tiny model (tens of seconds). Batches of 4 over 21
    # frames: the last one is short, padded to the compiled shape and cut back.
    info = probe(video)
    runs = {}
    for compile in ("never", "always"):
        out = tmp_path / f"{compile}.parquet"
        infer_shard(
            video, Shard(0, 0, N_FRAMES), model_path, out, info=info, batch_size=4, compile=compile, progress=False
        )
        runs[compile] = pq.read_table(out).to_pandas()
    columns = ["frame", "keypoint", "x", "y", "score"]
    assert runs["always"][columns[:2]].equals(runs["never"][columns[:2]])
    assert np.allclose(runs["always"][columns[2:]], runs["never"][columns[2:]], atol=1e-3)
    predictor = Predictor(load_model(model_path), batch_size=4, compile="always")
    assert predictor.compiled and not Predictor(load_model(model_path), compile="auto").compiled  # CPU


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
