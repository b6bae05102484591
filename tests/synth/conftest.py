"""A small synthetic archive shared by the synth tests (2 videos of 48 frames, made once)."""

from __future__ import annotations

import pytest

from posecore.synth import Archive, SynthConfig, make_archive

SMALL = SynthConfig(n_videos=2, n_frames=48, n_labeled_per_video=12, occlusion_rate=0.15, seed=7)


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Archive:
    """A complete archive with occlusions frequent enough that some labeled frames have them."""
    return make_archive(tmp_path_factory.mktemp("synth") / "out", SMALL)
