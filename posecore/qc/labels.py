"""Label QC of a training dataset: what a scientist checks before training on it.

`label_qc(dataset)` computes the numbers (`LabelQC`): labeled and missing points per keypoint and
split, labels that lay outside their image, suspected left/right swaps, duplicate frames, the mix
of original image sizes and the balance of the split across source videos; the swaps and the
duplicates are found by `posecore.qc.label_checks`. `label_section(qc, dataset)` turns them into
the report's "Labels" section. Every frame is named by its dataset row and its source
(`frame_source`), so a problem can be found and fixed in the labeling tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from posecore.io.dataset import SPLITS, TrainingDataset
from posecore.qc import section_plots
from posecore.qc.html import ReportFigure, Section, esc, fmt, table
from posecore.qc.label_checks import (
    Alignment,
    DuplicateGroup,
    SuspectedSwap,
    SwapPair,
    duplicate_groups,
    frame_source,
    suspected_swaps,
)
from posecore.qc.plots import figure_to_png


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

    pairs, swaps = suspected_swaps(dataset, xy, labeled, alignment, min_separation, min_margin)
    return LabelQC(
        keypoint_names=names,
        counts=tuple(counts),
        outside=outside,
        swap_pairs=pairs,
        swaps=swaps,
        duplicates=duplicate_groups(dataset, xy, duplicate_tolerance, label_tolerance_px),
        image_sizes=image_sizes,
        videos=videos,
        one_split_videos=one_split,
        one_video_splits=one_video,
    )


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
