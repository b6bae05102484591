import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from posecore.ops import find_peaks
from posecore.ops.peaks import argmax_maps, check_maps, find_peaks_reference, refine_peaks

REPO = Path(__file__).resolve().parents[2]
NAN = math.nan


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_subpixel_error_on_gaussians_is_far_below_argmax(make_gaussians, random_centres, sigma):
    centres = random_centres(400, 48, 64)  # (N, 2) as (x, y)
    maps = make_gaussians(centres, 48, 64, sigma)  # (N, 1, 48, 64)
    peaks = find_peaks(maps)[:, 0]  # (N, 3)
    error = (peaks[:, :2].double() - centres).norm(dim=-1)
    assert error.median() <= 0.05
    assert error.max() <= 0.01  # the log-quadratic fit is exact for a sampled Gaussian
    flat = maps.flatten(1).argmax(dim=-1)
    argmax_xy = torch.stack([flat % 64, flat // 64], dim=-1).double()
    assert (argmax_xy - centres).abs().median() > 0.2  # what refinement buys: ~0.25 px per axis
    assert (peaks[:, 2] >= math.exp(-0.5 / (2 * sigma**2)) - 1e-6).all()  # the nearest cell is within (0.5, 0.5)


def test_x_is_the_column_and_y_the_row(make_gaussians):
    maps = make_gaussians(torch.tensor([[10.25, 3.5]]), 9, 30, 2.0)
    x, y, score = find_peaks(maps)[0, 0].tolist()
    assert x == pytest.approx(10.25, abs=1e-4)
    assert y == pytest.approx(3.5, abs=1e-4)
    assert score == pytest.approx(math.exp(-(0.25**2 + 0.5**2) / 8), rel=1e-6)


def test_defined_answers_for_awkward_maps(awkward_maps):
    peaks = find_peaks(awkward_maps)  # (4, 6, 3)
    assert peaks.shape == (4, 6, 3) and peaks.dtype == torch.float32
    expected = {
        (0, 1): (NAN, NAN, NAN),  # all NaN
        (0, 2): (0.0, 0.0, 0.25),  # flat: first cell, no offset
        (0, 3): (0.0, 0.0, 1.0),  # top-left corner: no neighbour on one side of either axis
        (0, 4): (12.0, 6.0, 1.0),  # bottom-right corner
        (0, 5): (0.0, None, 1.0),  # left border: no x offset
        (1, 0): (None, None, 1.0),  # two equal maxima: the first in row-major order, at (9, 2)
        (1, 1): (6.0, None, 1.0),  # NaN right of the maximum: no x offset
        (1, 2): (None, None, pytest.approx(0.9)),  # +inf and NaN ignored
        (1, 3): (NAN, NAN, NAN),  # nothing finite
        (1, 4): (11.0, 5.0, pytest.approx(0.3)),  # one finite value among NaN
        (1, 5): (None, 6.0, 1.0),  # bottom border: no y offset
    }
    for (b, k), want in expected.items():
        got = peaks[b, k].tolist()
        for g, w in zip(got, want, strict=True):
            if w is None:
                continue
            assert (math.isnan(g) and isinstance(w, float) and math.isnan(w)) or g == w, (b, k, got, want)
    assert abs(peaks[1, 0, 0] - 9) <= 0.5 and abs(peaks[1, 0, 1] - 2) <= 0.5
    assert abs(peaks[1, 2, 0] - 3) <= 0.5 and abs(peaks[1, 2, 1] - 3) <= 0.5
    assert torch.isfinite(peaks[2:]).all()


def test_half_precision_is_refined_in_float32(make_gaussians, random_centres):
    maps = make_gaussians(random_centres(50, 24, 40), 24, 40, 2.0)
    half = maps.half()
    peaks = find_peaks(half)
    assert peaks.dtype == torch.float32
    torch.testing.assert_close(peaks, find_peaks(half.float()), rtol=0, atol=1e-5)
    assert torch.allclose(find_peaks(maps.bfloat16()), find_peaks(maps.bfloat16().float()), rtol=0, atol=1e-5)
    assert torch.allclose(find_peaks(maps.double()), find_peaks(maps), rtol=0, atol=1e-5)
    assert (peaks[:, 0, :2] - find_peaks(maps)[:, 0, :2]).abs().max() < 0.05  # float16 rounding


def test_small_empty_and_strided_inputs(awkward_maps):
    assert find_peaks(torch.full((1, 1, 1, 1), 0.5)).tolist() == [[[0.0, 0.0, 0.5]]]
    assert find_peaks(torch.zeros(0, 3, 5, 5)).shape == (0, 3, 3)
    strided = awkward_maps.permute(1, 0, 2, 3)  # (6, 4, 7, 13), not contiguous
    torch.testing.assert_close(find_peaks(strided), find_peaks(strided.contiguous()), equal_nan=True)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"\(B, K, H, W\).*\(3, 4, 5\)"):
        find_peaks(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match=r"floating point.*uint8"):
        find_peaks(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="H, W >= 1"):
        find_peaks(torch.zeros(1, 1, 0, 4))
    with pytest.raises(ValueError, match="'cuda'"):
        find_peaks(torch.zeros(1, 1, 4, 4), impl="cuda")
    with pytest.raises(ValueError, match=r"\(B, K, H, W\) tensor, got list"):
        find_peaks([[[[0.0]]]])


def test_float64_is_compared_in_float32_and_half_precision_as_stored():
    maps = torch.zeros(1, 1, 3, 5, dtype=torch.float64)
    maps[0, 0, 1, 1] = 1.0
    maps[0, 0, 1, 3] = 1.0 + 1e-12  # larger in float64, the same 1.0 in float32: the first wins
    assert find_peaks(maps)[0, 0, :2].tolist() == [1.0, 1.0]
    assert check_maps(maps).dtype == torch.float32
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert check_maps(maps.to(dtype)).dtype == dtype


def test_reference_asked_for_runs_the_reference(awkward_maps, peak_finder_calls):
    expected = find_peaks_reference(awkward_maps)
    peak_finder_calls.clear()
    torch.testing.assert_close(find_peaks(awkward_maps, impl="reference"), expected, equal_nan=True)
    assert peak_finder_calls == [("reference", "cpu")]


def test_several_peaks_per_map_are_each_refined_to_their_centre(make_gaussians):
    # Two Gaussians per map (K = 3 maps), refined at each one's integer maximum: (B, K, P=2).
    centres = torch.tensor([[4.3, 5.6], [20.8, 3.2], [7.1, 14.45], [18.5, 12.25], [2.6, 9.9], [15.2, 7.7]])
    maps = make_gaussians(centres, 18, 24, 1.5).view(3, 2, 18, 24).amax(dim=1).unsqueeze(0)  # (1, 3, 18, 24)
    index = (centres.round()[:, 1] * 24 + centres.round()[:, 0]).long().view(1, 3, 2)  # row * W + column
    peaks = refine_peaks(maps, index)  # (1, 3, 2, 3)
    assert peaks.shape == (1, 3, 2, 3)
    torch.testing.assert_close(peaks[0, ..., :2], centres.view(3, 2, 2), rtol=0, atol=2e-3)
    torch.testing.assert_close(peaks[0, ..., 2], maps.flatten(2).gather(2, index.view(1, 3, 2))[0], rtol=0, atol=0)


def test_a_map_without_a_finite_value_has_index_0_and_score_minus_infinity():
    maps = torch.rand(2, 2, 3, 4)
    maps[0, 1] = torch.nan
    maps[1, 0] = -torch.inf
    maps[1, 1, 2, 3] = torch.nan  # one NaN: the maximum is among the other values
    score, index = argmax_maps(maps)
    assert index[0, 1] == 0 and index[1, 0] == 0 and score[0, 1] == -torch.inf and score[1, 0] == -torch.inf
    assert index[1, 1] == maps[1, 1].flatten()[:11].argmax() and score[1, 1] == maps[1, 1].flatten()[:11].max()


def test_cpu_tensors_take_the_reference_and_importing_ops_skips_triton(awkward_maps, peak_finder_calls):
    expected = find_peaks_reference(awkward_maps)
    peak_finder_calls.clear()
    torch.testing.assert_close(find_peaks(awkward_maps), expected, equal_nan=True)
    assert peak_finder_calls == [("reference", "cpu")]
    code = "import sys, posecore.ops, posecore.ops.multipeak; print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
