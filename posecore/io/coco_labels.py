"""COCO keypoint label files (`.json`): `images`, `annotations` and `categories`.

The category with `keypoints` (a list of names) gives the keypoint names; several such
categories must all name the same keypoints. Each annotation of that category has `keypoints`
[x1, y1, v1, x2, y2, v2, ...]: v = 0 is not labeled (NaN); v = 1 (labeled, hidden) and v = 2
(labeled, visible) are both labels. An image with no annotation is not a labeled row. Rows are
the labeled images in the order of `images`.

A file where every labeled image has one annotation that labels keypoints, and none has a
`track_id`, reads as one animal per image: keypoints (N, K, 2), and an annotation with every
v = 0 labels nothing and is skipped. Otherwise it is a multi-animal table: keypoints
(N, I, K, 2), one slot per annotation of an image, with its `track_id` (PoseTrack's name for an
animal's identity; "" without one) as the track name; there an annotation with every v = 0, or
a `track_id` on two annotations of one image, is an error naming the image.

Image files: `file_name` is tried as an absolute path, then relative to the JSON file's folder,
then relative to an `images/` folder beside the JSON file. An image's `width` and `height`,
when given (above 0), must match the file.

Coordinates are taken as they are: COCO's keypoints are already in posecore's convention
(docs/design.md, "Coordinates", says why).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from posecore.errors import InputError
from posecore.io.label_table import ImageFiles, LabelTable, require_file

IMAGE_ROOTS = (".", "images")


def read_coco(path: str | Path) -> LabelTable:
    """Read a COCO keypoint JSON file.

    Raises:
        InputError: the file is missing or not JSON, lacks `images` / `annotations` /
            `categories`, has no category with keypoints or several naming different ones, an
            annotation's keypoints are not 3 numbers per keypoint or name an unknown image, a
            multi-animal image has an annotation that labels nothing or a track twice (naming
            the image), or nothing is labeled.
    """
    path = Path(path)
    require_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"not a readable COCO JSON file ({error})") from error
    if not isinstance(data, dict) or any(not isinstance(data.get(key), list) for key in ("images", "annotations")):
        raise InputError(path, "not a COCO keypoint file: expected lists 'images' and 'annotations'")
    names, category_ids = _keypoint_categories(path, data.get("categories"))
    images: dict[Any, dict[str, Any]] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise InputError(path, "an image needs an 'id' and a 'file_name'", f"images[{i}]")
        images[image["id"]] = image
    annotated: dict[Any, list[tuple[int, np.ndarray, str]]] = {}  # image id -> (annotation index, xy (K, 2), track)
    for a, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict) or annotation.get("category_id") not in category_ids:
            continue  # not a keypoint annotation (another category)
        xy = _decode(path, annotation.get("keypoints"), len(names), f"annotations[{a}]")
        image_id = annotation.get("image_id")
        if image_id not in images:
            raise InputError(path, f"image_id {image_id!r} is not in 'images'", f"annotations[{a}]")
        track = "" if annotation.get("track_id") is None else str(annotation["track_id"])
        annotated.setdefault(image_id, []).append((a, xy, track))
    multi = any(  # several annotations that label keypoints on one image, or any track
        sum(not np.isnan(xy).all() for _, xy, _ in found) > 1 or any(track for _, _, track in found)
        for found in annotated.values()
    )
    labeled = {
        image_id: found if multi else [entry for entry in found if not np.isnan(entry[1]).all()]  # v = 0: skipped
        for image_id, found in annotated.items()
    }
    rows = [image for image in data["images"] if labeled.get(image["id"])]
    if not rows:
        raise InputError(path, "no annotation labels a keypoint")
    file_names = tuple(image["file_name"] for image in rows)
    sizes = tuple(_declared_size(image) for image in rows)
    images_source = ImageFiles(path, file_names, roots=IMAGE_ROOTS, by_name=False, sizes=sizes)
    if not multi:
        keypoints = np.stack([labeled[image["id"]][0][1] for image in rows])  # (N, K, 2)
        return LabelTable(path, file_names, names, keypoints, "", images_source)
    n_slots = max(len(labeled[image["id"]]) for image in rows)
    keypoints = np.full((len(rows), n_slots, len(names), 2), np.nan, dtype=np.float32)  # (N, I, K, 2)
    tracks = np.full((len(rows), n_slots), "", dtype=object)  # (N, I)
    for r, image in enumerate(rows):
        where = f"image {image['file_name']!r} (id {image['id']!r})"
        seen: dict[str, int] = {}
        for i, (a, xy, track) in enumerate(labeled[image["id"]]):
            if np.isnan(xy).all():
                raise InputError(path, f"annotations[{a}] labels no keypoint (every v is 0) on a multi-animal {where}")
            if track and track in seen:
                raise InputError(
                    path, f"track_id {track!r} is on two annotations of {where}, annotations[{seen[track]}] and [{a}]"
                )
            seen[track] = a
            keypoints[r, i], tracks[r, i] = xy, track
    return LabelTable(path, file_names, names, keypoints, "", images_source, tracks=tracks)


def _keypoint_categories(path: Path, categories: Any) -> tuple[tuple[str, ...], set[Any]]:
    """The keypoint names and the ids of the categories that have them."""
    if not isinstance(categories, list):
        raise InputError(path, "not a COCO keypoint file: expected a list 'categories'")
    with_keypoints = [c for c in categories if isinstance(c, dict) and c.get("keypoints")]
    if not with_keypoints:
        raise InputError(path, "no category has 'keypoints' (a COCO detection file, not a keypoint file?)")
    names = tuple(str(name) for name in with_keypoints[0]["keypoints"])
    for category in with_keypoints[1:]:
        if tuple(str(name) for name in category["keypoints"]) != names:
            raise InputError(
                path,
                f"categories {with_keypoints[0].get('name')!r} and {category.get('name')!r} name different "
                f"keypoints: {list(names)} and {list(category['keypoints'])}",
            )
    if len(set(names)) != len(names):
        raise InputError(path, f"keypoint names repeat: {list(names)}")
    return names, {category.get("id") for category in with_keypoints}


def _decode(path: Path, keypoints: Any, k: int, where: str) -> np.ndarray:
    """[x, y, v] * K to float32 (K, 2) (x, y), NaN where v == 0."""
    if not isinstance(keypoints, list) or len(keypoints) != 3 * k:
        size = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        message = f"'keypoints' must hold 3 numbers (x, y, v) per keypoint, {3 * k} in all; got {size}"
        raise InputError(path, message, where)
    for j, value in enumerate(keypoints):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(path, f"keypoints[{j}] is {value!r}, not a finite number", where)
    triples = np.asarray(keypoints, dtype=np.float64).reshape(k, 3)  # (K, 3) (x, y, v)
    xy = triples[:, :2].astype(np.float32)  # (K, 2)
    xy[triples[:, 2] == 0] = np.nan
    return xy


def _declared_size(image: dict[str, Any]) -> tuple[int, int] | None:
    """(H, W) an image entry declares, or None when it gives none (sleap-io writes 0 when unknown)."""
    height, width = image.get("height"), image.get("width")
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    return None
