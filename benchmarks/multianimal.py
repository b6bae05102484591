"""Several animals per frame: accuracy, tracking and speed, as issue 22 measures them.

    python benchmarks/multianimal.py synthetic --out /tmp/ma/synth          # train on social scenes, track a test video
    python benchmarks/multianimal.py montblanc --out /tmp/ma/montblanc      # maDLC's birds, trained from scratch
    python benchmarks/multianimal.py sleap-mot                              # tracking the shipped poses of two mice
    python benchmarks/multianimal.py speed --frames 64                      # CPU frames/s, single- against multi-animal
    python benchmarks/multianimal.py synthetic --quick --out /tmp/ma/quick  # tiny models, 2 epochs: the path end to end
    python benchmarks/multianimal.py synthetic --out /tmp/ma/s2 --model /tmp/ma/synth/model/model.pt  # score only

synthetic: three identical animals (`posecore.synth.social`): two training videos with labeled
frames (half at encounters) and a test video of its own seed with at least 20 encounters
(crossings and near contacts). The top-down model trains on the labels; every frame of the test
video is detected, tracked (`track_video`, 3 animals known) and scored against the exact ground
truth: OKS mAP with SLEAP's sigma over every frame (hidden keypoints unlabeled), MOTA, IDF1 and
identity switches (1 - OKS with DeepLabCut's sigma as the distance, OKS >= 0.5 to match), and how
many of the encounters the swap-risk flags cover. `tracker_on_truth` tracks the visible ground
truth itself (each frame's animals shuffled, 2 px noise): the tracker apart from the detector.

montblanc: ../shared/data/madlc-montblanc (42 frames, 0-7 birds), a fixed split (seed 0, 20%
test, 10% val); prints test mAP with DeepLabCut's sigma (0.1) and SLEAP's, and every test frame's
labeled, detected, matched and missing birds.

sleap-mot: ../shared/data/sleap-mot-2mice; the poses of `sleap_tracked.slp` with their tracks
removed are tracked by posecore and scored against `proofread.slp`, beside the two trackers whose
output ships with the data.

speed: a 2-animal social frame size (default 640x480) through the single-animal `Predictor` and
the `TopDownPredictor` (the same architecture, untrained weights: the arithmetic is what counts),
frames decoded beforehand, the two taking turns `--repeats` times; prints frames/s of each run and
the ratio of their medians. A timing: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from posecore.hugepages import restart_with_huge_pages
from posecore.io.assemble import SplitConfig, assemble_dataset
from posecore.io.sleap_tracks import read_slp_instances
from posecore.io.trajectories import Instances, write_atomic
from posecore.multi.evaluate import evaluate_topdown, write_multi_evaluation
from posecore.multi.mot import FrameMatches, pose_distances, tracking_scores
from posecore.multi.oks import DLC_SIGMA, SLEAP_SIGMA, oks_matrix, pose_map
from posecore.multi.predict import TopDownPredictor, detect_video, load_topdown
from posecore.multi.topdown import TopDownConfig
from posecore.multi.tracking import TrackerConfig, track_video
from posecore.multi.train import train_topdown
from posecore.synth.animal import KEYPOINTS, SKELETON, SWAP_PAIRS
from posecore.synth.social import SocialConfig
from posecore.synth.social_archive import SocialArchiveConfig, make_social_archive, scene_of
from posecore.train.config import ModelConfig, TrainConfig

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MODEL = ModelConfig("densenet_lite", {"n_stacks": 2, "growth_rate": 16})
CENTROID_MODEL = ModelConfig("densenet_lite", {"n_stacks": 1, "growth_rate": 16})
QUICK_MODEL = ModelConfig("densenet_lite", {"n_stacks": 1, "growth_rate": 8, "n_transitions": 2})
RECIPE = TrainConfig(
    max_epochs=200,
    batch_size=8,
    sigma_px=3.0,
    flip=True,
    rotation_deg=180.0,
    translation_px=6.0,
    brightness=0.05,
    contrast=0.1,
    noise_std=0.01,
    peak_weight=20.0,
    max_minutes=45.0,
)
CENTROID_RECIPE = dataclasses.replace(RECIPE, sigma_px=3.0, translation_px=8.0, max_epochs=150, max_minutes=15.0)
QUICK = TrainConfig(max_epochs=2, batch_size=4, accelerator="cpu", sigma_px=3.0)

SCENE = SocialConfig(n_animals=3, n_frames=900, width=256, height=256, body_scale=1.2, n_encounters=24)
SYNTHETIC = TopDownConfig(max_animals=3, centroid_scale=0.5, crop_size=112)
"""Animals of 68 px in 256x256 frames: the centroid model sees 128x128, the pose model 112 px crops."""


def synthetic(args: argparse.Namespace) -> dict:
    """Train on two social videos, then detect, track and score a third (module docstring)."""
    out = Path(args.out)
    scene = dataclasses.replace(SCENE, n_frames=120, n_encounters=6) if args.quick else SCENE
    train_archive = make_social_archive(
        out / "train", SocialArchiveConfig(scene=scene, n_videos=2, n_labeled_per_video=12 if args.quick else 80)
    )
    test_archive = make_social_archive(
        out / "test", SocialArchiveConfig(scene=dataclasses.replace(scene, seed=100), n_videos=1, n_labeled_per_video=0)
    )
    dataset = assemble_dataset(
        train_archive.label_files, KEYPOINTS, SKELETON, SWAP_PAIRS, SplitConfig(0.1, 0.0, 0), max_animals=3
    )
    trained, train_s = _train(dataset, SYNTHETIC, args, out)
    model = load_topdown(trained.model_path)
    test_scene = scene_of(test_archive.config, 0)
    start = time.perf_counter()
    detections = detect_video(TopDownPredictor(model, batch_size=8), test_archive.videos[0])
    detect_s = time.perf_counter() - start
    tracked = track_video(detections, TrackerConfig(n_animals=3))
    write_atomic(detections, out / "detections.parquet")
    write_atomic(tracked, out / "tracked.parquet")
    found, paths = Instances.from_table(detections), Instances.from_table(tracked)
    truth = np.where(test_scene.visible[..., None], test_scene.keypoints, np.nan)  # (T, A, K, 2)
    present = found.present
    accuracy = pose_map(
        list(truth),
        [found.xy[t, present[t]] for t in range(len(truth))],
        [found.instance_score[t, present[t]] for t in range(len(truth))],
        sigma=SLEAP_SIGMA,
    )
    if not len(paths.frames):  # no track at all (a model that found nothing): every frame empty
        paths = dataclasses.replace(
            found, xy=found.xy[:, :0], track=found.track[:, :0], swap_risk=found.swap_risk[:, :0]
        )
    scores = _scene_tracking(truth, paths)
    oracle = _scene_tracking(truth, Instances.from_table(track_video(_truth_detections(truth), TrackerConfig(3))))
    errors = []  # each labeled animal against its most similar detection: localisation apart from gross errors
    for t in range(len(truth)):
        if present[t].any():
            nearest = np.nanargmax(np.nan_to_num(oks_matrix(truth[t], found.xy[t, present[t]], DLC_SIGMA)), axis=1)
            errors.append(np.linalg.norm(found.xy[t, present[t]][nearest] - truth[t], axis=-1))  # (A, K)
    errors = np.concatenate(errors)
    encounters = test_scene.encounters()
    flagged = sum(bool(paths.swap_risk[max(0, f - 2) : f + 3].any()) for f, _, _ in encounters)
    row = {
        "map_sleap_sigma": accuracy.map,
        "map_dlc_sigma": pose_map(
            list(truth),
            [found.xy[t, present[t]] for t in range(len(truth))],
            [found.instance_score[t, present[t]] for t in range(len(truth))],
            sigma=DLC_SIGMA,
        ).map,
        "median_px": dict(zip(KEYPOINTS, np.round(np.nanmedian(errors, axis=0), 2).tolist(), strict=True)),
        "p90_px": dict(zip(KEYPOINTS, np.round(np.nanpercentile(errors, 90, axis=0), 1).tolist(), strict=True)),
        "mota": scores.mota,
        "idf1": scores.idf1,
        "switches": scores.switches,
        "misses": scores.misses,
        "false_positives": scores.false_positives,
        "tracker_on_truth": {"mota": oracle.mota, "idf1": oracle.idf1, "switches": oracle.switches},
        "encounters": len(encounters),
        "encounters_flagged": flagged,
        "swap_risk_frames": int(paths.swap_risk.any(axis=1).sum()),
        "frames": len(truth),
        "training_frames": int((dataset.split == "train").sum()),
        "centroid_epochs": trained.centroid_epochs,
        "instance_epochs": trained.instance_epochs,
        "train_s": train_s,
        "detect_s": detect_s,
    }
    print(json.dumps(row, indent=2))
    return row


def _scene_tracking(truth: np.ndarray, paths: Instances):
    """MOTA, IDF1 and switches of tracked animals against the scene's (T, A, K, 2) ground truth."""
    frames = []
    for t in range(len(truth)):
        hyp = np.flatnonzero(paths.present[t])
        distances = pose_distances(truth[t], paths.xy[t, hyp], sigma=DLC_SIGMA)
        frames.append(FrameMatches(list(range(truth.shape[1])), [paths.track[t, h] for h in hyp], distances))
    return tracking_scores(frames)


def _truth_detections(truth: np.ndarray, noise_px: float = 2.0) -> pa.Table:
    """The visible ground truth as untracked detections: each frame's animals in a random order, 2 px noise."""
    rng = np.random.default_rng(0)
    order = np.argsort(rng.random(truth.shape[:2]), axis=1)  # (T, A)
    xy = np.take_along_axis(truth, order[..., None, None], axis=1) + rng.normal(0.0, noise_px, truth.shape)
    n = len(truth)
    ones = np.where(np.isfinite(xy[..., 0]), 1.0, np.nan)
    untracked = Instances(np.arange(n), np.arange(n) / SCENE.fps, xy, ones, np.ones(truth.shape[:2]),
                          np.full(truth.shape[:2], "", object), np.zeros(truth.shape[:2], bool), KEYPOINTS)  # fmt: skip
    return untracked.to_table()


def _train(dataset, config: TopDownConfig, args: argparse.Namespace, out: Path):
    """Train the top-down model with the benchmark's recipe (or --quick's); the result and its wall time."""
    models = (QUICK_MODEL, QUICK_MODEL) if args.quick else (MODEL, CENTROID_MODEL)
    recipes = (QUICK, QUICK) if args.quick else (RECIPE, CENTROID_RECIPE)
    if args.minutes:
        recipes = tuple(dataclasses.replace(r, max_minutes=args.minutes) for r in recipes)
    if args.epochs:
        recipes = tuple(dataclasses.replace(r, max_epochs=args.epochs) for r in recipes)
    if args.model:  # trained earlier by this command: its epochs are in the folders beside the file
        model = Path(args.model)
        epochs = [len(pd.read_csv(model.parent / part / "metrics.csv")) for part in ("centroid", "instance")]
        return Trained(model, *epochs, load_topdown(model).crop_size), None
    start = time.perf_counter()
    trained = train_topdown(
        dataset, config, models[0], recipes[0], out / "model", centroid_train_config=recipes[1],
        centroid_model_config=models[1],
    )  # fmt: skip
    result = Trained(trained.model_path, trained.centroid.epochs, trained.instance.epochs, trained.crop_size)
    return result, time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class Trained:
    """The top-down model file a run scores, and how it trained."""

    model_path: Path
    centroid_epochs: int
    instance_epochs: int
    crop_size: int


def montblanc(args: argparse.Namespace) -> dict:
    """Train from scratch on maDLC's birds with a fixed split; the test frames' mAP and counts."""
    label = Path(args.data) / "madlc-montblanc" / "labeled-data" / "montblanc" / "CollectedData_Daniel.h5"
    dataset = assemble_dataset(
        [label], ("head", "tail", "leftwing", "rightwing"), (("head", "tail"), ("leftwing", "rightwing")),
        (("leftwing", "rightwing"),), SplitConfig(val_fraction=0.1, test_fraction=0.2, seed=0), max_animals=8,
    )  # fmt: skip
    out = Path(args.out)
    trained, train_s = _train(dataset, TopDownConfig(max_animals=8, centroid_scale=0.25), args, out)
    result = evaluate_topdown(load_topdown(trained.model_path), dataset, "test")
    write_multi_evaluation(result, out / "eval")
    summary = result.summary()
    print(result.counts.to_string(index=False))
    row = {
        "map_dlc_sigma": summary["map_dlc_sigma"],
        "map_sleap_sigma": summary["map_sleap_sigma"],
        "animals": summary["animals"],
        "rmse_px": summary["rmse_px"],
        "test_frames": summary["n_frames"],
        "crop_size": trained.crop_size,
        "centroid_epochs": trained.centroid_epochs,
        "instance_epochs": trained.instance_epochs,
        "train_s": train_s,
    }
    print(json.dumps(row, indent=2))
    return row


def sleap_mot(args: argparse.Namespace) -> dict:
    """Track the shipped poses without their tracks; score posecore and the two shipped trackers."""
    folder = Path(args.data) / "sleap-mot-2mice"
    truth = read_slp_instances(folder / "proofread.slp", n_frames=97)

    def scores(found: Instances):
        frames = []
        for f in range(len(truth.frames)):
            gt, hyp = np.flatnonzero(truth.present[f]), np.flatnonzero(found.present[f])
            distances = pose_distances(truth.xy[f, gt], found.xy[f, hyp])
            frames.append(FrameMatches(list(truth.track[f, gt]), list(found.track[f, hyp]), distances))
        return tracking_scores(frames)

    rows = {}
    for name in ("sleap_tracked", "feature_tracked"):
        rows[name] = scores(read_slp_instances(folder / f"{name}.slp", n_frames=97))
    given = read_slp_instances(folder / "sleap_tracked.slp", n_frames=97)
    untracked = dataclasses.replace(given, times=given.frames / 47.0, track=np.full(given.track.shape, "", object))
    start = time.perf_counter()
    tracked = track_video(untracked.to_table(), TrackerConfig(n_animals=2))
    seconds = time.perf_counter() - start
    rows["posecore"] = scores(Instances.from_table(tracked))
    flagged = int(Instances.from_table(tracked).swap_risk.any(axis=1).sum())
    print(f"{'tracker':16} {'switches':>8} {'IDF1':>6} {'MOTA':>6} {'FP':>4} {'FN':>4}")
    for name, s in rows.items():
        print(f"{name:16} {s.switches:8d} {s.idf1:6.3f} {s.mota:6.3f} {s.false_positives:4d} {s.misses:4d}")
    print(f"posecore: {flagged} of 97 frames flagged as swap risks; tracking took {seconds:.3f} s")
    return {name: dataclasses.asdict(s) for name, s in rows.items()}


def speed(args: argparse.Namespace) -> dict:
    """Frames/s of the single-animal and the top-down predictor on the same frames (two animals each)."""
    import torch

    from posecore.models.export import LoadedModel, ModelMeta
    from posecore.models.registry import build_model
    from posecore.multi.predict import TopDownModel
    from posecore.predict import Predictor
    from posecore.synth.social import BODY_LENGTH, CENTRE_MARGIN, make_social_scene

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    width, height = args.size
    scale = min(2.0, 0.9 * min(width, height) / (2 * (CENTRE_MARGIN + BODY_LENGTH)))  # as large as fits, up to 2
    scene = make_social_scene(dataclasses.replace(SCENE, n_animals=2, width=width, height=height, body_scale=scale,
                                                  n_frames=max(args.frames, 16), n_encounters=2))  # fmt: skip
    frames = np.stack(list(scene.frames()))[: args.frames]

    class Raised(torch.nn.Module):
        """An untrained network whose maps are lifted by 1, so that every local maximum is above any threshold."""

        def __init__(self, network: torch.nn.Module) -> None:
            super().__init__()
            self.network, self.input_multiple = network, network.input_multiple

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [maps + 1.0 for maps in self.network(x)]

    def loaded(names: tuple[str, ...], size: tuple[int, int], raised: bool = False) -> LoadedModel:
        model = build_model(MODEL.architecture, len(names), 3, **MODEL.hyperparameters).eval()
        meta = ModelMeta(MODEL.architecture, MODEL.hyperparameters, names, size, 3, (128.0,) * 3, (64.0,) * 3, 4)
        return LoadedModel(Raised(model) if raised else model, meta, sha256="")

    single = Predictor(loaded(KEYPOINTS, (height, width)), batch_size=args.batch_size)
    crop = math.ceil(2 * CENTRE_MARGIN * scale * 1.25 / 32) * 32  # the crop `crop_size_for` would give these animals
    two = TopDownConfig(max_animals=2, centroid_scale=0.5, peak_threshold=0.0, duplicate_distance=0.0)
    centroid = loaded(("centroid",), (height // 2, width // 2), raised=True)
    model = TopDownModel(centroid, loaded(KEYPOINTS, (crop, crop)), two, crop)
    topdown = TopDownPredictor(model, batch_size=args.batch_size)
    # Untrained centroid maps have no meaningful peaks, and may lie below 0: lifted by 1, threshold 0 keeps the
    # 2 best and no duplicate is dropped, so every frame has 2 crops (checked), as a frame of two animals would.
    crops = topdown.predict(frames[: args.batch_size]).valid.sum(axis=1).mean()
    if crops != 2:
        raise SystemExit(f"the top-down predictor made {crops:.1f} crops a frame, not 2: the ratio would mean nothing")
    results = {}
    for name, run in (("single", single.predict), ("topdown", topdown.predict)) * args.repeats:
        run(frames[: args.batch_size])  # warm-up
        start = time.perf_counter()
        for first in range(0, len(frames), args.batch_size):
            run(frames[first : first + args.batch_size])
        results.setdefault(name, []).append(len(frames) / (time.perf_counter() - start))
    median = {name: float(np.median(values)) for name, values in results.items()}
    print(f"{width}x{height}, {len(frames)} frames, batch {args.batch_size}, {args.threads} threads, "
          f"{crops:.1f} crops of {crop} px a frame")  # fmt: skip
    for name, values in results.items():
        print(f"{name:8} frames/s: " + ", ".join(f"{v:.2f}" for v in values))
    print(f"top-down / single-animal, medians: {median['topdown'] / median['single']:.2f} (goal: at least 0.5)")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("synthetic", "montblanc"):
        command = sub.add_parser(name)
        command.add_argument("--out", required=True)
        command.add_argument("--quick", action="store_true", help="tiny models, 2 epochs")
        command.add_argument("--minutes", type=float, default=0.0, help="time limit of each model's training")
        command.add_argument("--epochs", type=int, default=0, help="epochs of each model (default: the recipe's)")
        command.add_argument("--data", default=str(DATA))
        command.add_argument("--model", help="score this model file (an earlier run's OUT/model/model.pt), no training")
    command = sub.add_parser("sleap-mot")
    command.add_argument("--data", default=str(DATA))
    command = sub.add_parser("speed")
    command.add_argument("--frames", type=int, default=64)
    command.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    command.add_argument("--batch-size", type=int, default=8)
    command.add_argument("--threads", type=int, default=2)
    command.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.command in ("synthetic", "montblanc", "speed"):
        restart_with_huge_pages(sys.argv)  # as posecore runs models
    {"synthetic": synthetic, "montblanc": montblanc, "sleap-mot": sleap_mot, "speed": speed}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
