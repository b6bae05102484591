import math

import pytest
import torch

from posecore.ops import find_peaks
from posecore.ops.multipeak import find_peaks_multi


def test_finds_each_animal_highest_first(make_gaussians):
    centres = torch.tensor([[10.3, 20.7], [40.2, 30.1], [25.6, 5.4], [5.0, 40.0]], dtype=torch.float64)
    heights = [0.8, 1.0, 0.6, 0.15]  # the last is below the threshold
    maps = torch.stack([make_gaussians(c[None], 48, 64, 2.0, a)[0, 0] for c, a in zip(centres, heights, strict=True)])
    maps = maps.amax(dim=0).view(1, 1, 48, 64)  # one map, four animals
    peaks = find_peaks_multi(maps, max_peaks=5, threshold=0.2)  # (1, 1, 5, 3)
    assert peaks.shape == (1, 1, 5, 3)
    found = peaks[0, 0]
    order = [1, 0, 2]
    torch.testing.assert_close(found[:3, :2].double(), centres[order], rtol=0, atol=1e-3)
    torch.testing.assert_close(found[:3, 2], torch.tensor(heights)[order], rtol=0, atol=0.1)
    assert torch.isnan(found[3:]).all()


def test_top_one_is_the_single_peak_finder(make_gaussians, random_centres, awkward_maps):
    maps = make_gaussians(random_centres(40, 30, 50), 30, 50, 2.0).view(8, 5, 30, 50)
    torch.testing.assert_close(find_peaks_multi(maps, 1, threshold=-math.inf)[:, :, 0], find_peaks(maps))
    torch.testing.assert_close(
        find_peaks_multi(awkward_maps, 1, threshold=-math.inf)[:, :, 0], find_peaks(awkward_maps), equal_nan=True
    )


def test_plateau_gives_one_peak_and_ties_rank_in_row_major_order():
    maps = torch.zeros(1, 1, 8, 9)
    maps[0, 0, 5:7, 1:3] = 0.7  # a 2x2 plateau: its first cell (x=1, y=5) only
    maps[0, 0, 1, 6] = 0.7  # an equal single peak earlier in row-major order
    peaks = find_peaks_multi(maps, max_peaks=3, threshold=0.5)[0, 0]
    assert peaks[0].tolist() == pytest.approx([6.0, 1.0, 0.7])
    assert peaks[1, 2].item() == pytest.approx(0.7)
    assert peaks[1, :2].tolist() == pytest.approx([1.5, 5.5])  # plateau: the fit puts it mid-plateau
    assert torch.isnan(peaks[2]).all()


def test_nms_radius_suppresses_close_peaks_and_nan_never_suppresses():
    maps = torch.zeros(1, 2, 10, 10)
    maps[0, :, 4, 4] = 1.0
    maps[0, :, 4, 6] = 0.8  # two cells to the right
    maps[0, 1, 4, 5] = torch.nan  # between them in the second map
    assert torch.isfinite(find_peaks_multi(maps, 3, threshold=0.5, nms_radius=1)[0, :, :2, 2]).all()
    wide = find_peaks_multi(maps, 3, threshold=0.5, nms_radius=2)[0]
    assert wide[:, 0, :2].tolist() == [[4.0, 4.0], [4.0, 4.0]]
    assert torch.isnan(wide[:, 1:]).all()


def test_empty_nan_half_and_tiny_maps():
    nan_maps = torch.full((2, 1, 5, 5), torch.nan)
    assert torch.isnan(find_peaks_multi(nan_maps, 2)).all()
    tiny = find_peaks_multi(torch.full((1, 1, 1, 2), 0.9), max_peaks=4)  # fewer cells than slots
    assert tiny.shape == (1, 1, 4, 3) and tiny[0, 0, 0].tolist() == pytest.approx([0.0, 0.0, 0.9])
    assert torch.isnan(tiny[0, 0, 1:]).all()
    maps = torch.rand(2, 3, 11, 13, generator=torch.Generator().manual_seed(0))
    half = find_peaks_multi(maps.half(), 4, threshold=0.5)
    torch.testing.assert_close(half, find_peaks_multi(maps.half().float(), 4, threshold=0.5), equal_nan=True)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="max_peaks"):
        find_peaks_multi(torch.zeros(1, 1, 3, 3), 0)
    with pytest.raises(ValueError, match="nms_radius"):
        find_peaks_multi(torch.zeros(1, 1, 3, 3), 1, nms_radius=0)
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        find_peaks_multi(torch.zeros(3, 3), 1)
