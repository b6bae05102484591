"""posecore: animal pose estimation from raw videos to quality-checked keypoint trajectories."""

__version__ = "0.1.0"
