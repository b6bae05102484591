"""Label QC of a training dataset: what a scientist checks before training on it.

`label_qc(dataset)` computes the numbers (`LabelQC`): labeled and missing points per keypoint and
split, labels that lay outside their image, suspected left/right swaps, duplicate frames, the mix
of original image sizes and the balance of the split across source videos. `label_section(qc,
dataset)` turns them into the report's "Labels" section. Every frame is named by its dataset row
and its source (`frame_source`), so a problem can be found and fixed in the labeling tool.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import numpy as np
from PIL import Image
from scipy.spatial import cKDTree

from posecore.io.dataset import SPLITS, TrainingDataset
from posecore.qc import section_plots
from posecore.qc.html import ReportFigure, Section, esc, fmt, table
from posecore.qc.plots import figure_to_png

Alignment = Literal["rigid", "translation"]
THUMBNAIL = 16
"""Side of the grey thumbnails compared to find duplicate frames, in cells."""


@dataclass(frozen=True)
class SplitCounts:
    """Labeled points per keypoint over a set of frames ("all" or one split).

    Attributes:
        split: "all", "train", "val" or "test".
        n_frames: frames in the set.
        labeled: (K,) frames in which keypoint k has a finite x and y.
    """

    split: str
    n_frames: int
    labeled: tuple[int, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        """(K,) frames in which keypoint k is not labeled (NaN)."""
        return tuple(self.n_frames - n for n in self.labeled)


@dataclass(frozen=True)
class OutsideLabel:
    """A label that lay outside its image and was set to NaN: its original (x, y) in pixels."""

    frame: int
    source: str
    keypoint: str
    x: float
    y: float


@dataclass(frozen=True)
class SuspectedSwap:
    """A frame whose left/right labels sit nearer each other's usual places than their own.

    Attributes:
        frame: dataset row.
        source: where the frame came from (`frame_source`).
        left, right: the swap pair's keypoint names.
        kept_px: summed distance (px) of the pair's labels to their own usual places.
        swapped_px: the same, to each other's usual places; below `kept_px` here.
    """

    frame: int
    source: str
    left: str
    right: str
    kept_px: float
    swapped_px: float

    @property
    def margin_px(self) -> float:
        """How much nearer (px) the swapped places are: the larger, the surer the swap."""
        return self.kept_px - self.swapped_px


@dataclass(frozen=True)
class SwapPair:
    """How well one left/right pair can be told apart by where it sits on the body.

    Attributes:
        left, right: the pair's keypoint names.
        separation_px: distance between the two usual places (NaN: one is never labeled).
        scatter_px: the larger of the two keypoints' median distance to their own usual place.
        checked: whether the pair was checked for swaps: its places are at least `min_separation`
            times its scatter apart (else being nearer the other's place happens without a swap,
            e.g. paws of a running animal seen from the side).
        n_suspected: frames suspected of swapping it.
    """

    left: str
    right: str
    separation_px: float
    scatter_px: float
    checked: bool
    n_suspected: int


@dataclass(frozen=True)
class DuplicateGroup:
    """Frames whose images are identical or near-identical (same thumbnail within a tolerance).

    Attributes:
        frames: dataset rows, ascending.
        sources: where each came from.
        identical: every image is byte-for-byte the same.
        labels_agree: every frame has the same keypoints labeled, each within `label_tolerance_px`.
        max_label_diff_px: largest distance between the same keypoint's labels (NaN: none in common).
    """

    frames: tuple[int, ...]
    sources: tuple[str, ...]
    identical: bool
    labels_agree: bool
    max_label_diff_px: float


@dataclass(frozen=True)
class LabelQC:
    """The numbers of the label QC of one dataset.

    Attributes:
        keypoint_names: the K names.
        counts: labeled points over all frames first, then per split that has frames.
        outside: labels outside their image, or None when the dataset does not record them.
        swap_pairs: each swap pair's separation and whether it was checked.
        swaps: suspected left/right swaps, largest margin first.
        duplicates: groups of duplicate frames, by first frame.
        image_sizes: (height, width) -> frames per split ("all" included) of that original size.
        videos: source video -> frames per split.
        one_split_videos: videos whose frames all fall in one split (when there are several splits).
        one_video_splits: splits whose frames all come from one video.
    """

    keypoint_names: tuple[str, ...]
    counts: tuple[SplitCounts, ...]
    outside: tuple[OutsideLabel, ...] | None
    swap_pairs: tuple[SwapPair, ...]
    swaps: tuple[SuspectedSwap, ...]
    duplicates: tuple[DuplicateGroup, ...]
    image_sizes: Mapping[tuple[int, int], Mapping[str, int]]
    videos: Mapping[str, Mapping[str, int]]
    one_split_videos: tuple[str, ...]
    one_video_splits: tuple[str, ...]


def frame_source(dataset: TrainingDataset, row: int) -> str:
    """Where dataset row `row` came from: "<video> frame <n>", else "<video>/<image>", else "row <row>"."""
    video = str(dataset.source_video[row]) if len(dataset.source_video) else ""
    frame = int(dataset.source_frame[row]) if len(dataset.source_frame) else -1
    path = str(dataset.source_path[row]) if len(dataset.source_path) else ""
    if frame >= 0:
        return f"{video} frame {frame}".strip()
    if path:
        name = PurePosixPath(path.replace("\\", "/")).name
        return f"{video}/{name}" if video else name
    return video or f"row {row}"


def label_qc(
    dataset: TrainingDataset,
    *,
    alignment: Alignment = "rigid",
    min_separation: float = 2.0,
    min_margin: float = 0.5,
    duplicate_tolerance: float = 2.0,
    label_tolerance_px: float = 1.0,
) -> LabelQC:
    """Check a dataset's labels: counts, outside labels, swaps, duplicates, image sizes, split balance.

    Args:
        dataset: keypoints (N, K, 2) as (x, y) pixels with NaN for missing, and their images.
        alignment: how each frame is put in the body's frame of reference before comparing a
            swap pair's labels with their usual places: "rigid" (rotation and translation, for
            animals that turn, e.g. seen from above) or "translation" (the animal keeps its heading).
        min_separation: a swap pair is checked only when its two usual places are at least this
            many times its keypoints' median scatter (about their own usual place) apart.
        min_margin: a frame is suspected when its pair's labels sit nearer each other's usual
            places than their own by at least this fraction of the places' separation (0: nearer
            at all), so that a label that merely wobbles near the midpoint is not reported.
        duplicate_tolerance: frames are duplicates when their 16x16 grey thumbnails differ by at
            most this many grey levels (0-255) in every cell.
        label_tolerance_px: duplicate frames' labels agree when each keypoint is within this distance.
    """
    if alignment not in ("rigid", "translation"):
        raise ValueError(f"alignment must be 'rigid' or 'translation', got {alignment!r}")
    names = tuple(dataset.keypoint_names)
    xy = np.asarray(dataset.keypoints, dtype=np.float64)  # (N, K, 2)
    labeled = np.isfinite(xy).all(axis=-1)  # (N, K)
    split = np.asarray(dataset.split).astype(str)
    present = [s for s in SPLITS if (split == s).any()]
    counts = [SplitCounts("all", len(xy), tuple(int(n) for n in labeled.sum(axis=0)))]
    counts += [
        SplitCounts(s, int((split == s).sum()), tuple(int(n) for n in labeled[split == s].sum(axis=0))) for s in present
    ]

    outside_xy = getattr(dataset, "outside_xy", None)
    outside = None
    if outside_xy is not None:
        rows, columns = np.nonzero(np.isfinite(np.asarray(outside_xy)).any(axis=-1))  # (M,) each
        outside = tuple(
            OutsideLabel(
                int(f), frame_source(dataset, int(f)), names[k], float(outside_xy[f, k, 0]), float(outside_xy[f, k, 1])
            )
            for f, k in zip(rows, columns, strict=True)
        )

    recorded = getattr(dataset, "image_sizes", None)  # (N, 2) (height, width) before padding
    sizes = np.tile(dataset.image_size, (len(xy), 1)) if recorded is None else np.asarray(recorded)  # (N, 2)
    image_sizes: dict[tuple[int, int], dict[str, int]] = {}
    for (height, width), s in zip(sizes.tolist(), split, strict=True):
        entry = image_sizes.setdefault((int(height), int(width)), {"all": 0} | {p: 0 for p in present})
        entry["all"] += 1
        entry[s] += 1

    video_names = np.asarray(dataset.source_video).astype(str) if len(dataset.source_video) else np.full(len(xy), "")
    videos = {
        str(v): {s: int(((video_names == v) & (split == s)).sum()) for s in present}
        for v in sorted(set(video_names.tolist()))
    }
    one_split = tuple(v for v, c in videos.items() if len(present) > 1 and sum(n > 0 for n in c.values()) == 1)
    one_video = tuple(s for s in present if sum(c[s] > 0 for c in videos.values()) == 1)

    pairs, swaps = _suspected_swaps(dataset, xy, labeled, alignment, min_separation, min_margin)
    return LabelQC(
        keypoint_names=names,
        counts=tuple(counts),
        outside=outside,
        swap_pairs=pairs,
        swaps=swaps,
        duplicates=_duplicates(dataset, xy, duplicate_tolerance, label_tolerance_px),
        image_sizes=image_sizes,
        videos=videos,
        one_split_videos=one_split,
        one_video_splits=one_video,
    )


def _fit(source: np.ndarray, target: np.ndarray, rigid: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (2, 2) and translation t (2,) with `source @ R.T + t` ≈ `target`, both (M, 2), M >= 1.

    Least squares (Kabsch, no reflection, no scale); translation only when `rigid` is False or M < 2.
    """
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)  # (2,) each
    rotation = np.eye(2)
    if rigid and len(source) >= 2:
        u, _, vt = np.linalg.svd((source - source_mean).T @ (target - target_mean))  # of the (2, 2) covariance
        d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
        rotation = vt.T @ np.diag([1.0, d]) @ u.T
    return rotation, target_mean - source_mean @ rotation.T


def _reference_shape(xy: np.ndarray, labeled: np.ndarray, rigid: bool) -> tuple[np.ndarray, np.ndarray]:
    """The usual (K, 2) body shape, and every frame aligned to it (N, K, 2), NaN where unlabeled.

    Generalized Procrustes: starts from the frame with the most labeled keypoints, aligns every
    frame to the shape on the keypoints they share, takes the per-keypoint median, three times.
    Keypoints never labeled stay NaN.
    """
    reference = xy[int(np.argmax(labeled.sum(axis=1)))].copy()  # (K, 2)
    aligned = np.full_like(xy, np.nan)  # (N, K, 2)
    for _ in range(3):
        aligned = np.full_like(xy, np.nan)
        for f in range(len(xy)):
            common = labeled[f] & np.isfinite(reference).all(axis=-1)  # (K,)
            if common.sum() >= 2:
                rotation, shift = _fit(xy[f, common], reference[common], rigid)
                aligned[f, labeled[f]] = xy[f, labeled[f]] @ rotation.T + shift
        if not np.isfinite(aligned).any():
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": keypoints never labeled stay NaN
            reference = np.nanmedian(aligned, axis=0)  # (K, 2)
    return reference, aligned


def _suspected_swaps(
    dataset: TrainingDataset,
    xy: np.ndarray,
    labeled: np.ndarray,
    alignment: Alignment,
    min_separation: float,
    min_margin: float,
) -> tuple[tuple[SwapPair, ...], tuple[SuspectedSwap, ...]]:
    """Frames where a swap pair's labels sit nearer each other's usual places, relative to the body.

    Each frame is aligned to the usual shape on its other labeled keypoints (the pair left out, so
    a swap cannot pull the alignment); then the pair's summed distance to their own usual places
    is compared with the distance to each other's (with one of the pair unlabeled, that one's);
    the frame is suspected when the latter is shorter by `min_margin` times the places' separation.
    Pairs whose usual places are too close for their scatter are not checked (see `SwapPair`).
    """
    if not dataset.swap_pairs or len(xy) == 0:
        return (), ()
    rigid = alignment == "rigid"
    reference, aligned = _reference_shape(xy, labeled, rigid)  # (K, 2), (N, K, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # keypoints never labeled: NaN scatter
        scatter = np.nanmedian(np.linalg.norm(aligned - reference, axis=-1), axis=0)  # (K,)
    known = np.isfinite(reference).all(axis=-1)  # (K,)
    names = dataset.keypoint_names
    pairs, found = [], []
    for a, b in dataset.swap_pairs:
        separation = float(np.linalg.norm(reference[a] - reference[b]))
        spread = float(max(scatter[a], scatter[b]))
        checked = bool(known[a] and known[b] and separation >= min_separation * spread)
        suspects = []
        for f in range(len(xy) if checked else 0):
            others = labeled[f] & known
            others[[a, b]] = False
            pair = [k for k in (a, b) if labeled[f, k]]
            if not pair or others.sum() < (2 if rigid else 1):
                continue
            rotation, shift = _fit(xy[f, others], reference[others], rigid)
            placed = xy[f] @ rotation.T + shift  # (K, 2) in the reference's frame
            kept = sum(float(np.linalg.norm(placed[k] - reference[k])) for k in pair)
            swapped = sum(float(np.linalg.norm(placed[k] - reference[b if k == a else a])) for k in pair)
            if swapped < kept and kept - swapped >= min_margin * separation:
                suspects.append(SuspectedSwap(f, frame_source(dataset, f), names[a], names[b], kept, swapped))
        pairs.append(SwapPair(names[a], names[b], separation, spread, checked, len(suspects)))
        found += suspects
    return tuple(pairs), tuple(sorted(found, key=lambda s: (-s.margin_px, s.frame)))


def _duplicates(
    dataset: TrainingDataset, xy: np.ndarray, tolerance: float, label_tolerance_px: float
) -> tuple[DuplicateGroup, ...]:
    """Groups of frames whose grey thumbnails differ by at most `tolerance` in every cell."""
    if len(xy) < 2:
        return ()
    thumbnails = np.stack([_thumbnail(image) for image in dataset.images])  # (N, THUMBNAIL**2)
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in cKDTree(thumbnails).query_pairs(r=tolerance, p=np.inf):
        parent[root(max(i, j))] = root(min(i, j))
    members: dict[int, list[int]] = {}
    for i in range(len(xy)):
        members.setdefault(root(i), []).append(i)
    groups = []
    for frames in sorted(m for m in members.values() if len(m) > 1):
        first = dataset.images[frames[0]]
        identical = all(np.array_equal(first, dataset.images[f]) for f in frames[1:])
        points = xy[frames]  # (G, K, 2)
        same_missing = bool((np.isnan(points) == np.isnan(points[:1])).all())
        spread = np.linalg.norm(points[:, None] - points[None, :], axis=-1)  # (G, G, K)
        worst = float(np.nanmax(spread)) if np.isfinite(spread).any() else float("nan")
        agree = same_missing and not (worst > label_tolerance_px)
        sources = tuple(frame_source(dataset, f) for f in frames)
        groups.append(DuplicateGroup(tuple(frames), sources, identical, agree, worst))
    return tuple(groups)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A (THUMBNAIL**2,) float32 grey thumbnail of an (H, W, C) uint8 image, by area averaging."""
    grey = image.astype(np.float32).mean(axis=-1)  # (H, W)
    return np.asarray(Image.fromarray(grey).resize((THUMBNAIL, THUMBNAIL), Image.BOX)).ravel()


MAX_ROWS = 40
"""Rows at most in a list of problems (swaps, outside labels, duplicates); the rest are counted."""


def _status(bad: bool, text: str) -> str:
    return f'<li class="{"bad" if bad else "ok"}">{esc(text)}</li>'


def _plural(n: int, word: str) -> str:
    """A count and a noun: "no words", "1 word", "3 words"."""
    return f"{n or 'no'} {word}{'' if n == 1 else 's'}"


def _capped(rows: list[list[str]], header: list[str], css_class: str) -> str:
    """A table of at most MAX_ROWS rows, with a line counting the ones left out."""
    shown = table(header, rows[:MAX_ROWS], css_class)
    return shown + (f"<p>… and {len(rows) - MAX_ROWS} more.</p>" if len(rows) > MAX_ROWS else "")


def _checks(qc: LabelQC) -> str:
    """The summary list: one line per check, red where it found something."""
    items = []
    if qc.outside is None:
        items.append("<li>Labels outside the image: not recorded in this dataset.</li>")
    else:
        items.append(_status(bool(qc.outside), f"{_plural(len(qc.outside), 'label')} outside the image"))
    unchecked = sum(not p.checked for p in qc.swap_pairs)
    note = f" ({unchecked} of {len(qc.swap_pairs)} pairs not checked)" if unchecked else ""
    items.append(_status(bool(qc.swaps), f"{_plural(len(qc.swaps), 'suspected left/right swap')}{note}"))
    copies = sum(len(g.frames) for g in qc.duplicates)
    text = f"{_plural(len(qc.duplicates), 'group')} of duplicate frames ({copies} frames)" if copies else ""
    items.append(_status(bool(copies), text or "no duplicate frames"))
    sizes = ", ".join(f"{w}×{h}" for h, w in qc.image_sizes)
    items.append(_status(len(qc.image_sizes) > 1, f"{_plural(len(qc.image_sizes), 'image size')}: {sizes}"))
    items += [_status(True, f"video {v!r}: all its frames are in one split") for v in qc.one_split_videos]
    if len(qc.videos) == 1:
        items.append(
            _status(
                True,
                f"every frame comes from one video ({next(iter(qc.videos))!r}): no split "
                "tells how the model does on another video",
            )
        )
    else:
        items += [_status(True, f"split {s!r}: all its frames come from one video") for s in qc.one_video_splits]
    return f'<ul class="label-checks">{"".join(items)}</ul>'


def _pick(values: tuple[int, ...], k: int | None) -> int:
    """Keypoint k's count, or the sum over keypoints when k is None."""
    return sum(values) if k is None else values[k]


def _counts_table(qc: LabelQC) -> str:
    """Labeled and missing points per keypoint, over all frames and per split, and a total row."""
    header = ["keypoint", "labeled", "missing", "missing %"]
    for c in qc.counts[1:]:
        header += [f"{c.split} labeled", f"{c.split} missing"]
    total = qc.counts[0]
    rows = []
    for k in [*range(len(qc.keypoint_names)), None]:
        possible = total.n_frames * (len(qc.keypoint_names) if k is None else 1)
        missing = _pick(total.missing, k)
        row = [
            "<b>all keypoints</b>" if k is None else esc(qc.keypoint_names[k]),
            str(_pick(total.labeled, k)),
            str(missing),
            fmt(100.0 * missing / possible if possible else None, 1),
        ]
        for c in qc.counts[1:]:
            row += [str(_pick(c.labeled, k)), str(_pick(c.missing, k))]
        rows.append(row)
    return table(header, rows, "label-counts")


def _outside_html(qc: LabelQC) -> str:
    if qc.outside is None:
        return "<p>This dataset does not record labels that lay outside their image.</p>"
    if not qc.outside:
        return "<p>None.</p>"
    rows = [[str(o.frame), esc(o.source), esc(o.keypoint), fmt(o.x, 1), fmt(o.y, 1)] for o in qc.outside]
    return _capped(rows, ["row", "source", "keypoint", "x", "y"], "label-outside")


def _swaps_html(qc: LabelQC) -> str:
    if not qc.swap_pairs:
        return "<p>The dataset defines no swap pairs.</p>"
    rows = [
        [
            esc(f"{p.left} / {p.right}"),
            fmt(p.separation_px, 1),
            fmt(p.scatter_px, 1),
            str(p.n_suspected) if p.checked else "not checked: too close for their scatter",
        ]
        for p in qc.swap_pairs
    ]
    parts = [table(["pair", "usual places apart (px)", "scatter (px)", "suspected frames"], rows, "label-swap-pairs")]
    if not qc.swaps:
        parts.append("<p>No frame has a checked pair's labels nearer each other's usual places than their own.</p>")
        return "".join(parts)
    rows = [
        [
            str(s.frame),
            esc(s.source),
            esc(f"{s.left} / {s.right}"),
            fmt(s.kept_px, 1),
            fmt(s.swapped_px, 1),
            fmt(s.margin_px, 1),
        ]
        for s in qc.swaps
    ]
    header = ["row", "source", "pair", "to own places (px)", "to swapped places (px)", "margin (px)"]
    parts.append("<p>Worst first. Distances are to each keypoint's median place relative to the body.</p>")
    parts.append(_capped(rows, header, "label-swaps"))
    return "".join(parts)


def _duplicates_html(qc: LabelQC) -> str:
    if not qc.duplicates:
        return "<p>None.</p>"
    rows = []
    for g in qc.duplicates:
        labels = (
            '<span class="ok">agree</span>'
            if g.labels_agree
            else f'<span class="bad">differ (up to {fmt(g.max_label_diff_px, 1)} px)</span>'
        )
        images = "identical" if g.identical else "near-identical"
        rows.append([", ".join(map(str, g.frames)), esc("; ".join(g.sources)), images, labels])
    return _capped(rows, ["rows", "sources", "images", "labels"], "label-duplicates")


def _sizes_and_videos_html(qc: LabelQC) -> str:
    splits = [c.split for c in qc.counts[1:]]
    rows = [[f"{w}×{h}", *(str(n[s]) for s in ("all", *splits))] for (h, w), n in qc.image_sizes.items()]
    parts = ["<h3>Image sizes</h3>", table(["size (W×H)", "frames", *splits], rows, "label-sizes")]
    rows = []
    for video, n in qc.videos.items():
        flag = '<span class="bad">one split only</span>' if video in qc.one_split_videos else ""
        rows.append([esc(video or "(unknown)"), *(str(n[s]) for s in splits), flag])
    parts += ["<h3>Frames per video and split</h3>", table(["video", *splits, "note"], rows, "label-videos")]
    return "\n".join(parts)


def label_section(qc: LabelQC, dataset: TrainingDataset) -> Section:
    """The report's "Labels" section: the checks' summary, tables and the label-position figure.

    Args:
        qc: from `label_qc(dataset)`.
        dataset: the same dataset; its first image is the backdrop of the position figure.
    """
    frames = ", ".join(f"{c.n_frames} {c.split}" for c in qc.counts[1:])
    parts = [
        f"<p>{qc.counts[0].n_frames} labeled frames ({esc(frames)}), {len(qc.keypoint_names)} keypoints.</p>",
        _checks(qc),
        "<h3>Labeled and missing points</h3>",
        _counts_table(qc),
    ]
    figures = []
    if len(dataset.images):
        figure = section_plots.label_positions(dataset.images[0], dataset.keypoints, qc.keypoint_names)
        figures.append(
            ReportFigure(
                "labels-positions",
                figure_to_png(figure),
                "Every labeled point of each keypoint over the image frame (one panel per keypoint, the "
                "first frame dimmed underneath): a point far from its keypoint's cloud is worth a look.",
                "label positions per keypoint",
            )
        )
        parts.append(figures[-1].html())
    parts += ["<h3>Labels outside the image</h3>", _outside_html(qc)]
    parts += ["<h3>Suspected left/right swaps</h3>", _swaps_html(qc)]
    parts += ["<h3>Duplicate frames</h3>", _duplicates_html(qc)]
    parts.append(_sizes_and_videos_html(qc))
    return Section("Labels", "\n".join(parts), tuple(figures))
