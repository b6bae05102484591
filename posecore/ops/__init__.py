"""Tensor operations: subpixel peak detection on confidence maps (B, K, H, W).

- `find_peaks(maps)` → (B, K, 3) as (x, y, score): one peak per map, the Triton kernel on CUDA
  tensors (`peaks_triton.py`, imported only then) and the PyTorch reference elsewhere.
- `find_peaks_multi(maps, max_peaks, threshold, nms_radius)` → (B, K, max_peaks, 3): several
  animals per frame, refined the same way.
- `single_animal.peaks_on_the_animal(maps, peaks, reach)`: a single animal's peaks that lie
  off it moved to their map's best maximum on it; `layout.peaks_in_layout(maps, peaks, ranges,
  stride)`: keypoints whose offsets to the others break the training labels' ranges moved to
  other maxima of their maps. `decode.decode_peaks` chains the three: what inference and
  training's validation decode with.

A new refinement must go into both `peaks.refine_peaks` and the kernel, with its case added to
`tests/ops/test_peaks_triton.py` (kernel against reference) and `tests/ops/test_peaks.py`.
"""

from posecore.ops.multipeak import find_peaks_multi
from posecore.ops.peaks import find_peaks, find_peaks_reference

__all__ = ["find_peaks", "find_peaks_multi", "find_peaks_reference"]
