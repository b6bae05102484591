"""Multi-camera 3D: calibrate a rig of N >= 2 cameras from a board, triangulate 2D keypoints into 3D.

The modules, front to back: `options` (the stage's config dataclasses), `boards` (board
geometry and corner detection), `detection` (finding the board in every camera's images or
videos), `camera` (the lens model), `rig` (the cameras together and Anipose's
calibration.toml), `bundle` (bundle adjustment), `calibrate` (the calibration), `files` (its
files), `triangulate` (robust triangulation), `refine` (the optional spatiotemporal
refinement), `sheet` (sessions of the video sheet), `session` (a session's 2D trajectories to
3D ones), `trajectories` (the 3D Parquet layout) and `compare` (comparison with a ground
truth). Lengths are in millimetres, pixels follow docs/design.md.
"""
