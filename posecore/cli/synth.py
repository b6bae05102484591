"""`posecore synth OUT`: generate the bundled synthetic archive (videos, ground truth, labels).

Running it again with the same settings does nothing: the archive's manifest (`OUT/synth.json`,
written last) records the settings, and a complete archive made with them is kept.
"""

from __future__ import annotations

import argparse

from posecore.errors import InputError
from posecore.synth import Archive, SynthConfig, is_complete, make_archive

_DEFAULTS = SynthConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `synth` subcommand to the `posecore` parser."""
    parser = subparsers.add_parser(
        "synth",
        help="generate the bundled synthetic archive (videos, ground truth, labels)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", metavar="OUT", help="folder to write the archive into (created if needed)")
    parser.add_argument("--videos", type=int, default=_DEFAULTS.n_videos, help="number of videos (%(default)s)")
    parser.add_argument("--frames", type=int, default=_DEFAULTS.n_frames, help="frames per video (%(default)s)")
    parser.add_argument("--width", type=int, default=_DEFAULTS.width, help="frame width, even (%(default)s)")
    parser.add_argument("--height", type=int, default=_DEFAULTS.height, help="frame height, even (%(default)s)")
    parser.add_argument(
        "--labeled", type=int, default=_DEFAULTS.n_labeled_per_video, help="labeled frames per video (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="random seed (%(default)s)")
    parser.add_argument("--force", action="store_true", help="regenerate even if OUT already holds this archive")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Make the archive described by `args`, or keep the one already there; returns the exit code."""
    try:
        config = SynthConfig(
            n_videos=args.videos,
            n_frames=args.frames,
            width=args.width,
            height=args.height,
            n_labeled_per_video=args.labeled,
            seed=args.seed,
        )
    except ValueError as error:
        raise InputError(args.out, f"cannot make this archive: {error}") from error
    if not args.force and is_complete(Archive.at(args.out, config)):
        print(f"{args.out}: complete archive with these settings already there; nothing to do")
        return 0
    archive = make_archive(args.out, config, force=args.force)
    n_images = sum(len(images) for images in archive.images)
    print(
        f"{archive.root}: wrote {len(archive.videos)} videos of {config.n_frames} frames "
        f"({config.width}x{config.height}), {n_images} labeled frames, video sheet {archive.video_sheet}"
    )
    return 0
