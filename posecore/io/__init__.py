"""Reading and writing posecore's files: videos, labels, datasets, trajectories."""
