"""Outlier frames: where the model is unsure or implausible, the frames to label next (active learning).

As DeepLabCut's `extract_outlier_frames` does, one video's trajectories (docs/design.md,
"Trajectories") are scanned for frames where a keypoint scores low (`score_stat` "any": the
lowest keypoint score; "mean": the mean over keypoints, below `min_score`) or jumps (a keypoint
moves more than `jump_px` pixels from the previous frame). Each flagged frame gets a severity in
[0, 1): 1 - stat / min_score for a low score, 1 - jump_px / jump for a jump, the larger of the
two when both hold. Frames are picked worst first (ties: earlier frame first), each at least
`min_gap` frames from every frame picked before it, at most `n_frames` of them.

Trajectories of several animals (a `track` column) are picked by
`posecore.multi.outliers.find_multi_outliers`: frames where the tracker saw a likely identity
swap first, then low scores and jumps of each animal; their machine labels and config.yaml
are multi-animal DeepLabCut's (one individual per track).

They are written as a DeepLabCut project folder, which DeepLabCut and napari-deeplabcut open:

    out_dir/config.yaml                                 bodyparts, labeler name (scorer), pcutoff
    out_dir/labeled-data/<video>/img<frame>.png         the frames, exactly as decoded
    out_dir/labeled-data/<video>/machinelabels-iter0.h5 the model's predictions on them (+ .csv)
    out_dir/outliers.tsv                                why each frame was picked, worst first
    out_dir/README.txt                                  how to correct them

Why this layout, and why unsure points are written as NaN: docs/design.md, "Outlier frames".
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

from posecore.errors import InputError
from posecore.io.frames import image_name, write_pngs
from posecore.io.trajectories import Instances
from posecore.io.video import VideoInfo, probe

ScoreStat = Literal["any", "mean"]
COLUMNS = ("frame", "keypoint", "x", "y", "score")
DLC_H5_KEY = "df_with_missing"


@dataclass(frozen=True)
class OutlierConfig:
    """Which frames count as outliers and how many to pick.

    Attributes:
        n_frames: at most this many frames are picked.
        min_score: a frame is flagged when its score statistic is below this.
        score_stat: "any" (the lowest keypoint score) or "mean" (the mean over keypoints);
            a keypoint with no prediction (NaN) scores 0.
        jump_px: a frame is flagged when a keypoint moved more than this from the previous frame (pixels).
        min_gap: picked frames are at least this many frames apart.
        nan_below: predicted points scoring below this are written as NaN (not labeled).
    """

    n_frames: int = 20
    min_score: float = 0.5
    score_stat: ScoreStat = "any"
    jump_px: float = 20.0
    min_gap: int = 10
    nan_below: float = 0.1

    def __post_init__(self) -> None:
        if self.score_stat not in ("any", "mean"):
            raise ValueError(f"unknown score_stat {self.score_stat!r}; known: any, mean")
        if self.n_frames < 1 or self.min_gap < 0:
            raise ValueError(f"n_frames must be >= 1 and min_gap >= 0, got {self.n_frames} and {self.min_gap}")
        if not (self.min_score > 0 and self.jump_px > 0):
            raise ValueError(f"min_score and jump_px must be positive, got {self.min_score} and {self.jump_px}")


@dataclass(frozen=True)
class Poses:
    """One video's trajectories as arrays over every frame from the first to the last.

    Attributes:
        frames: int64 (F,) consecutive frame indices.
        keypoint_names: the K names.
        xy: float64 (F, K, 2) (x, y) in pixels; NaN where missing (and for frames absent from the table).
        score: float64 (F, K) scores; NaN where missing.
    """

    frames: np.ndarray
    keypoint_names: tuple[str, ...]
    xy: np.ndarray
    score: np.ndarray


def read_poses(
    source: str | Path | pd.DataFrame,
    *,
    video_name: str | None = None,
    keypoint_names: list[str] | None = None,
    where: str | Path | None = None,
) -> Poses:
    """Read one video's trajectories (a Parquet file, a folder of them, or a table) into `Poses`.

    Args:
        source: the trajectories.
        video_name: when the table holds several videos (a `video` column), the one to keep.
        keypoint_names: the keypoints in order; default: the table's order.
        where: the trajectories' file, named in errors when `source` is a table read from it.

    Raises:
        InputError: the file is missing or not Parquet, columns are missing, the table is empty,
            holds several instances or videos (without `video_name`), or repeats a (frame, keypoint).
    """
    where = where or ("<table>" if isinstance(source, pd.DataFrame) else source)
    table = load_video_table(source, video_name)
    if "instance" in table.columns and table["instance"].nunique() > 1:
        raise InputError(where, "holds several instances; outlier extraction takes single-animal trajectories")
    if len(table) == 0:
        raise InputError(where, "the trajectory table has no rows")
    keypoint = table["keypoint"]
    if not isinstance(keypoint.dtype, pd.CategoricalDtype):  # Parquet's dictionary column arrives categorical
        keypoint = keypoint.astype(str).astype("category")
    keypoint = keypoint.cat.rename_categories([str(c) for c in keypoint.cat.categories])
    names = tuple(keypoint_names or (str(k) for k in pd.unique(keypoint)))
    code = keypoint.cat.set_categories(list(names)).cat.codes.to_numpy()  # (R,), -1 for unlisted names
    if (code < 0).any():
        raise InputError(where, f"keypoint {keypoint.iloc[int(np.argmax(code < 0))]!r} is not in {list(names)}")
    frame = table["frame"].to_numpy(np.int64)
    first, last = int(frame.min()), int(frame.max())
    row = frame - first
    if np.bincount(row * len(names) + code).max() > 1:  # one count per (frame, keypoint) cell
        raise InputError(where, "a (frame, keypoint) appears twice")
    xy = np.full((last - first + 1, len(names), 2), np.nan)  # (F, K, 2)
    score = np.full((last - first + 1, len(names)), np.nan)  # (F, K)
    xy[row, code, 0] = table["x"].to_numpy(np.float64)
    xy[row, code, 1] = table["y"].to_numpy(np.float64)
    score[row, code] = table["score"].to_numpy(np.float64)
    return Poses(np.arange(first, last + 1, dtype=np.int64), names, xy, score)


def load_video_table(source: str | Path | pd.DataFrame, video_name: str | None = None) -> pd.DataFrame:
    """One video's trajectory rows from a Parquet file, a folder of them, or a table.

    Raises:
        InputError: the file is missing or not Parquet, columns are missing, or the table holds
            several videos and `video_name` is not one of them.
    """
    where = "<table>" if isinstance(source, pd.DataFrame) else source
    if isinstance(source, pd.DataFrame):
        table = source
    elif not Path(source).exists():
        raise InputError(source, "no such trajectory file or folder")
    else:
        try:
            table = pd.read_parquet(source)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise InputError(source, f"not a readable Parquet trajectory table ({error})") from error
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(where, f"not a trajectory table: missing columns {missing}")
    if "video" in table.columns and table["video"].nunique() > 1:
        videos = sorted(map(str, pd.unique(table["video"])))
        if video_name not in videos:
            raise InputError(where, f"holds the videos {videos}; say which one (video_name)")
        table = table[table["video"].astype(str) == video_name]
    return table


def find_outliers(poses: Poses, config: OutlierConfig = OutlierConfig()) -> pd.DataFrame:
    """Every flagged frame with its reason and numbers, worst first.

    Returns:
        One row per flagged frame: frame, reason ("low_score", "jump" or "low_score+jump"),
        severity, min_score, mean_score, worst_keypoint (lowest score), max_jump_px and
        jump_keypoint (NaN / "" for the first frame); sorted by severity descending, then frame.
    """
    score = np.nan_to_num(poses.score, nan=0.0)  # (F, K): no prediction scores 0
    stat = score.min(axis=1) if config.score_stat == "any" else score.mean(axis=1)  # (F,)
    jump = np.full(poses.score.shape, np.nan)  # (F, K) distance moved since the previous frame
    jump[1:] = np.linalg.norm(np.diff(poses.xy, axis=0), axis=2)
    max_jump = np.where(np.isnan(jump).all(axis=1), np.nan, np.nanmax(np.nan_to_num(jump, nan=-1.0), axis=1))  # (F,)
    low = stat < config.min_score
    jumped = np.nan_to_num(max_jump, nan=0.0) > config.jump_px
    severity_low = np.where(low, 1.0 - stat / config.min_score, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        severity_jump = np.where(jumped, 1.0 - config.jump_px / max_jump, 0.0)
    flagged = np.flatnonzero(low | jumped)
    names = np.asarray(poses.keypoint_names, dtype=object)
    has_jump = ~np.isnan(max_jump[flagged])
    jump_keypoint = np.where(has_jump, names[np.argmax(np.nan_to_num(jump[flagged], nan=-1.0), axis=1)], "")
    result = pd.DataFrame(
        {
            "frame": poses.frames[flagged],
            "reason": np.select(
                [low[flagged] & jumped[flagged], low[flagged]], ["low_score+jump", "low_score"], "jump"
            ),
            "severity": np.maximum(severity_low, severity_jump)[flagged],
            "min_score": score.min(axis=1)[flagged],
            "mean_score": score.mean(axis=1)[flagged],
            "worst_keypoint": names[np.argmin(score[flagged], axis=1)] if len(flagged) else [],
            "max_jump_px": max_jump[flagged],
            "jump_keypoint": jump_keypoint,
        }
    )
    return result.sort_values(["severity", "frame"], ascending=[False, True], kind="stable").reset_index(drop=True)


def pick_outliers(flagged: pd.DataFrame, n_frames: int, min_gap: int) -> pd.DataFrame:
    """The first `n_frames` rows of `flagged` (worst first) that lie `min_gap` frames or more from every earlier pick.

    Returns:
        The picked rows, in the order of `flagged`, with a `rank` column (1 = worst).
    """
    picked: list[int] = []
    kept = np.zeros(0, dtype=np.int64)  # sorted frames picked so far
    for i, frame in enumerate(flagged["frame"].to_numpy(np.int64)):
        j = np.searchsorted(kept, frame)
        near = (j > 0 and frame - kept[j - 1] < min_gap) or (j < len(kept) and kept[j] - frame < min_gap)
        if not near:
            picked.append(i)
            kept = np.insert(kept, j, frame)
            if len(picked) == n_frames:
                break
    out = flagged.iloc[picked].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def machine_labels(
    poses: Poses, frames: np.ndarray, *, scorer: str, video_name: str, n_video_frames: int, nan_below: float
) -> pd.DataFrame:
    """The model's predictions on `frames` in DeepLabCut's layout (a machinelabels table).

    Returns:
        Rows indexed by ("labeled-data", video_name, image name), in frame order; float64
        columns (scorer, bodyparts, coords) with coords x, y and likelihood; points scoring
        below `nan_below` (or not predicted) are NaN in all three.
    """
    frames = np.sort(np.asarray(frames, dtype=np.int64))
    rows = frames - poses.frames[0]
    xy = poses.xy[rows].copy()  # (N, K, 2)
    score = poses.score[rows].copy()  # (N, K)
    drop = ~(score >= nan_below) | np.isnan(xy).any(axis=2)  # (N, K); NaN scores are dropped too
    xy[drop] = np.nan
    score[drop] = np.nan
    values = np.concatenate([xy, score[..., None]], axis=2).reshape(len(frames), -1)  # (N, K*3) x, y, likelihood
    columns = pd.MultiIndex.from_product(
        [[scorer], list(poses.keypoint_names), ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
    )
    index = pd.MultiIndex.from_tuples(
        [("labeled-data", video_name, image_name(int(f), n_video_frames)) for f in frames]
    )
    return pd.DataFrame(values, index=index, columns=columns)


def extract_outliers(
    trajectories: str | Path | pd.DataFrame,
    video: str | Path,
    out_dir: str | Path,
    config: OutlierConfig = OutlierConfig(),
    *,
    labeler: str = "labeler",
    scorer: str | None = None,
    video_name: str | None = None,
    keypoint_names: list[str] | None = None,
    skeleton: list[tuple[str, str]] | None = None,
    iteration: int = 0,
    info: VideoInfo | None = None,
) -> pd.DataFrame:
    """Pick one video's outlier frames and write them as a DeepLabCut project folder (see the module docstring).

    Args:
        trajectories: the video's trajectories (Parquet file or folder, or a table).
        video: the video they were predicted from.
        out_dir: the folder to write; replaced whole, atomically (filled under a temporary name).
        config: what counts as an outlier, and how many to pick.
        labeler: the person who corrects them: config.yaml's scorer, so the corrections are saved
            as `CollectedData_<labeler>.h5`.
        scorer: the scorer of the machine labels; default `posecore-<model hash>` from the
            trajectories' provenance, else "posecore".
        video_name: the video's name in the row index and folder; default the video's file stem.
        keypoint_names: keypoint order; default the trajectories' order.
        skeleton: edges as pairs of keypoint names, for config.yaml.
        iteration: the refinement round, as in `machinelabels-iter<iteration>.h5`.
        info: the video's probe, if known.

    Returns:
        The picked frames, worst first: rank, frame, time_s, image and `find_outliers`' columns
        (also written to out_dir/outliers.tsv).

    Raises:
        InputError: bad trajectories, or frames beyond the end of the video.
    """
    info = info or probe(video)
    video_name = video_name or Path(video).stem
    where = "<table>" if isinstance(trajectories, pd.DataFrame) else trajectories
    table = load_video_table(trajectories, video_name)
    individuals: list[str] = []
    if "track" in table.columns or table["instance"].nunique() > 1:  # several animals
        from posecore.multi.outliers import find_multi_outliers, individual_names, multi_machine_labels

        poses = Instances.from_table(table, keypoint_names, where)
        flagged = find_multi_outliers(poses, lambda *animal: find_outliers(Poses(*animal), config))
        individuals, labels_of = individual_names(poses), multi_machine_labels
    else:
        poses = read_poses(table, keypoint_names=keypoint_names, where=where)
        flagged, labels_of = find_outliers(poses, config), machine_labels
    if len(poses.frames) and poses.frames[-1] >= info.n_frames:
        raise InputError(
            where, f"has frame {poses.frames[-1]} but {video} has {info.n_frames} frames; not its trajectories?"
        )
    picks = pick_outliers(flagged, config.n_frames, config.min_gap)
    frames = picks["frame"].to_numpy(np.int64)
    picks.insert(2, "time_s", [info.time_of(int(f)) for f in frames])
    picks.insert(3, "image", [image_name(int(f), info.n_frames) for f in frames])
    scorer = scorer or _model_scorer(trajectories)

    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        images = staging / "labeled-data" / video_name
        images.mkdir(parents=True)
        order = np.argsort(frames)
        write_pngs(video, frames[order], [picks["image"].iloc[i] for i in order], images, info=info)
        if len(frames):
            labels = labels_of(
                poses, frames, scorer=scorer, video_name=video_name, n_video_frames=info.n_frames,
                nan_below=config.nan_below,
            )  # fmt: skip
            labels.to_hdf(images / f"machinelabels-iter{iteration}.h5", key=DLC_H5_KEY, mode="w")
            labels.to_csv(images / f"machinelabels-iter{iteration}.csv")
        config_yaml = _dlc_config(out_dir, video, info, poses.keypoint_names, labeler, config, skeleton, iteration)
        if individuals:  # multi-animal DeepLabCut's project keys
            config_yaml.update(multianimalproject=True, individuals=individuals, uniquebodyparts=[],
                               multianimalbodyparts=list(poses.keypoint_names), bodyparts="MULTI!")  # fmt: skip
        (staging / "config.yaml").write_text(yaml.safe_dump(config_yaml, sort_keys=False))
        picks.to_csv(staging / "outliers.tsv", sep="\t", index=False, float_format="%.6g")
        (staging / "README.txt").write_text(_readme(trajectories, video, video_name, labeler, scorer, config, picks))
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return picks


def _model_scorer(trajectories: str | Path | pd.DataFrame) -> str:
    from posecore.io.trajectories import read_provenance

    if isinstance(trajectories, pd.DataFrame) or not Path(trajectories).is_file():
        return "posecore"
    try:
        return f"posecore-{read_provenance(trajectories)['model_hash'][:12]}"
    except (InputError, KeyError, TypeError, ValueError):
        return "posecore"


def _dlc_config(
    out_dir: Path,
    video: str | Path,
    info: VideoInfo,
    names: tuple[str, ...],
    labeler: str,
    config: OutlierConfig,
    skeleton: list[tuple[str, str]] | None,
    iteration: int,
) -> dict:
    """A minimal DeepLabCut config.yaml: what DeepLabCut and napari-deeplabcut read from it."""
    return {
        "Task": f"posecore-refine-{Path(video).stem}",
        "scorer": labeler,
        "date": datetime.date.today().strftime("%b%d"),
        "multianimalproject": False,
        "identity": None,
        "project_path": str(out_dir.resolve()),
        "engine": "pytorch",
        "video_sets": {str(Path(video).resolve()): {"crop": f"0, {info.width}, 0, {info.height}"}},
        "bodyparts": list(names),
        "start": 0,
        "stop": 1,
        "numframes2pick": config.n_frames,
        "skeleton": [list(edge) for edge in skeleton or []],
        "skeleton_color": "black",
        "pcutoff": config.min_score,
        "dotsize": 8,
        "alphavalue": 0.7,
        "colormap": "rainbow",
        "TrainingFraction": [0.95],
        "iteration": iteration,
        "default_net_type": "resnet_50",
        "snapshotindex": -1,
        "batch_size": 8,
        "cropping": False,
        "x1": 0,
        "x2": info.width,
        "y1": 0,
        "y2": info.height,
        "posecore_outliers": asdict(config),
    }


def _readme(
    trajectories: str | Path | pd.DataFrame,
    video: str | Path,
    video_name: str,
    labeler: str,
    scorer: str,
    config: OutlierConfig,
    picks: pd.DataFrame,
) -> str:
    source = "a table" if isinstance(trajectories, pd.DataFrame) else str(trajectories)
    return f"""Frames for the next labeling round: {len(picks)} outlier frames of {video}, picked by posecore
from the trajectories {source}.

labeled-data/{video_name}/ holds the frames (img<frame>.png, named after their index in the video)
and machinelabels-iter*.h5 (and .csv), the model's predictions on them (scorer {scorer}) as a
starting point. Points the model scored below {config.nan_below} are left out (NaN): place them if
the keypoint is visible. outliers.tsv says why each frame was picked, worst first.

Correct them, then save CollectedData_{labeler}.h5 (and .csv) in labeled-data/{video_name}/:
- napari-deeplabcut: open the folder labeled-data/{video_name} in napari, select the machinelabels
  layer, move or delete points (E outlines those scoring below {config.min_score}), and save the
  layer (Ctrl+S): napari-deeplabcut writes CollectedData_{labeler}.h5 beside the images, with the
  labeler's name from config.yaml. Edit `scorer` in config.yaml first to use another name.
- DeepLabCut: copy labeled-data/{video_name} into your project's labeled-data/ folder and run
  deeplabcut.refine_labels, then deeplabcut.merge_datasets.
- Any other tool: write DeepLabCut's CollectedData layout (coords x and y only).

posecore reads the corrected file with posecore.io.labels.read_labels.
"""
