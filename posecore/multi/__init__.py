"""Several animals per frame: accuracy metrics, top-down detection, tracking identities over time.

- `oks`: object keypoint similarity and COCO's mAP (`pose_map`), as pycocotools computes it.
- `mot`: MOTA, IDF1 and identity switches (`tracking_scores`), as motmetrics computes them.
- `tracking`: one video's detections joined into at most `n_animals` tracks (`track_video`),
  with swap-risk flags.
- `topdown`, `train`, `predict`, `evaluate`: the top-down model (animals' centres, then each
  animal's pose on a crop around it), trained with posecore's loop into one model file,
  predicting untracked detections per frame, measured by OKS mAP and animal counts.
- `outliers`: swap-risk frames first for the next labeling round.

Why top-down, and how the pieces fit: docs/multianimal.md.
"""
