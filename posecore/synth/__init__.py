"""A synthetic archive of animal videos with exact ground truth, for the demo and end-to-end tests.

`make_archive(out_dir, SynthConfig())` writes a few short videos of an articulated animal
moving over a textured arena, the exact keypoint positions of every frame, and a labeled
subset in DeepLabCut's layout, so that the demo needs no download and goes through the same
label import as real data. The modules, back to front: `animal` (body plan, keypoints,
motion), `render` (numpy drawing), `scene` (one video's content), `media` (ffmpeg in and out), `archive` (the files).

Social scenes (`social`, `social_archive`): two to four animals crossing and brushing past each
other, drawn in depth order, with identities in the ground truth and labels in multi-animal
DeepLabCut's layout: `make_social_archive(out_dir, SocialArchiveConfig())`.

For multi-camera 3D: `rig` (cameras with known lenses and poses, a board seen by them, rendered
board images), `animal3d` (the animal walking in 3D and its view in every camera) and
`rig_archive` (a synthetic session on disk: calibration images, one video per camera, ground truth).
"""

from posecore.synth.animal import KEYPOINTS, SKELETON, SWAP_PAIRS
from posecore.synth.archive import Archive, SynthConfig, is_complete, make_archive
from posecore.synth.media import decode_frames, truncate_video
from posecore.synth.social import SocialConfig, SocialScene, make_social_scene
from posecore.synth.social_archive import SocialArchive, SocialArchiveConfig, make_social_archive

__all__ = [
    "KEYPOINTS",
    "SKELETON",
    "SWAP_PAIRS",
    "Archive",
    "SocialArchive",
    "SocialArchiveConfig",
    "SocialConfig",
    "SocialScene",
    "SynthConfig",
    "decode_frames",
    "is_complete",
    "make_archive",
    "make_social_archive",
    "make_social_scene",
    "truncate_video",
]
