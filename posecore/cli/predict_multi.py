"""`posecore predict` with a top-down model: one video's animals detected, tracked and written.

`posecore.cli.predict` hands a model file of several animals per frame (`is_topdown`) here:
the video's frames are detected (`detect_video`), tracked over the whole video (`track_video`,
the model's `max_animals` animals, `--count`), and written as `<video>.parquet`
(`MULTI_ANIMAL_SCHEMA`, with provenance); `--export slp` writes the tracks for SLEAP's GUI and
`dlc-h5` / `dlc-csv` multi-animal DeepLabCut tables, one individual per track.
"""

from __future__ import annotations

import argparse

from posecore.errors import InputError


def run_topdown(args: argparse.Namespace) -> int:
    """Detect, track and export one video with a top-down model; print where the files went."""
    from posecore.io import exports
    from posecore.io.sleap_tracks import write_slp
    from posecore.io.trajectories import Provenance, write_atomic
    from posecore.io.video import probe
    from posecore.multi.predict import TopDownPredictor, detect_video, load_topdown
    from posecore.multi.tracking import TrackerConfig, track_video
    from posecore.predict import resolve_device

    if args.filter != "none" or "nwb" in args.export:
        raise InputError(args.model, "a top-down model's tracks are not filtered or written as NWB (yet): drop "
                         "--filter and --export nwb")  # fmt: skip
    device = resolve_device(args.device)
    model = load_topdown(args.model, device=device)
    info = probe(args.video)
    stop = info.n_frames if args.stop is None else args.stop
    if not 0 <= args.start < stop <= info.n_frames:
        raise InputError(args.video, f"frames [{args.start}, {stop}) are not inside [0, {info.n_frames})")
    predictor = TopDownPredictor(model, device, args.batch_size, compile=args.compile, priors=args.priors)
    detections = detect_video(predictor, args.video, args.start, stop, args.batch_size)
    tracked = track_video(detections, TrackerConfig(n_animals=model.config.max_animals, count=args.count))
    out_dir = args.out or args.video.parent
    parquet = out_dir / f"{args.video.stem}.parquet"
    config = {"command": "predict", "model": str(args.model), "count": args.count}
    write_atomic(tracked, parquet, Provenance.for_video(model.sha256, config, args.video))
    written = [parquet]
    table = tracked.to_pandas()
    scorer = f"posecore-{model.sha256[:12]}"
    names = model.keypoint_names
    for kind in args.export:
        if kind == "slp":
            path = out_dir / f"{args.video.stem}.slp"
            skeleton = [(names[a], names[b]) for a, b in model.instance.meta.skeleton]
            write_slp(table, path, video=args.video, skeleton=skeleton,
                      video_shape=(info.n_frames, info.height, info.width, 3))  # fmt: skip
        else:
            path = out_dir / f"{args.video.stem}_{scorer}.{'h5' if kind == 'dlc-h5' else 'csv'}"
            (exports.write_dlc_h5 if kind == "dlc-h5" else exports.write_dlc_csv)(table, path, scorer, names)
        written.append(path)
    print(f"{args.video}: {stop - args.start} frames, {table['track'].astype(str).replace('', None).nunique()} tracks")
    for path in written:
        print(f"  {path}")
    return 0
