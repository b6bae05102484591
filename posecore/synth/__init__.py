"""A synthetic archive of animal videos with exact ground truth, for the demo and end-to-end tests.

`make_archive(out_dir, SynthConfig())` writes a few short videos of an articulated animal
moving over a textured arena, the exact keypoint positions of every frame, and a labeled
subset in DeepLabCut's layout, so that the demo needs no download and goes through the same
label import as real data. The modules, back to front: `animal` (body plan, keypoints,
motion), `render` (numpy drawing), `scene` (one video's content), `media` (ffmpeg in and out), `archive` (the files).

For multi-camera 3D: `rig` (cameras with known lenses and poses, a board seen by them, rendered
board images), `animal3d` (the animal walking in 3D and its view in every camera) and
`rig_archive` (a synthetic session on disk: calibration images, one video per camera, ground truth).
"""

from posecore.synth.animal import KEYPOINTS, SKELETON, SWAP_PAIRS
from posecore.synth.archive import Archive, SynthConfig, is_complete, make_archive
from posecore.synth.media import decode_frames, truncate_video

__all__ = [
    "KEYPOINTS",
    "SKELETON",
    "SWAP_PAIRS",
    "Archive",
    "SynthConfig",
    "decode_frames",
    "is_complete",
    "make_archive",
    "truncate_video",
]
