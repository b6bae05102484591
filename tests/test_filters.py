import numpy as np
import pandas as pd
import pytest

from posecore.filters import FilterConfig, filter_trajectories, interpolate_gaps, smooth


def test_short_interior_gaps_are_interpolated_long_and_edge_gaps_stay_missing():
    values = np.arange(20, dtype=float) * 2.0  # a straight line: interpolation gives it back exactly
    missing = np.zeros(20, dtype=bool)
    missing[[0, 1]] = True  # at the start: nothing before it to interpolate from
    missing[5:8] = True  # 3 frames: filled
    missing[10:16] = True  # 6 frames: longer than max_gap
    out = interpolate_gaps(values, missing, max_gap=3)
    assert np.isnan(out[:2]).all() and np.isnan(out[10:16]).all()
    assert np.allclose(out[5:8], [10.0, 12.0, 14.0])
    assert np.allclose(out[16:], values[16:]) and np.allclose(out[2:5], values[2:5])


def test_median_removes_a_one_frame_jump_and_savgol_keeps_a_parabola():
    track = np.full(15, 50.0)
    track[7] = 90.0  # a one-frame swap to another animal part
    assert np.allclose(smooth(track, FilterConfig("median", window=3)), 50.0)
    t = np.arange(15, dtype=float)
    parabola = 0.5 * t**2 - 3 * t + 4
    assert np.allclose(smooth(parabola, FilterConfig("savgol", window=5, polyorder=2)), parabola)
    short = np.array([1.0, 9.0, np.nan, 3.0, 4.0])  # stretches shorter than the window stay as they are
    assert np.allclose(smooth(short, FilterConfig("median", window=3)), short, equal_nan=True)


def test_filtered_columns_go_beside_the_raw_ones():
    frames = np.arange(30)
    rng = np.random.default_rng(0)
    rows = []
    for name, offset in (("snout", 0.0), ("tail", 100.0)):
        x = frames * 1.5 + offset + rng.normal(0, 0.2, 30)
        y = np.full(30, 20.0 + offset)
        score = np.full(30, 0.9)
        score[12:14] = 0.01  # low-score points: interpolated in the filtered columns only
        x[12:14] = 999.0
        rows.append(pd.DataFrame({"frame": frames, "instance": 0, "keypoint": name, "x": x, "y": y, "score": score}))
    table = pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=1)  # any row order
    out = filter_trajectories(table, FilterConfig("median", window=3, min_score=0.1, max_gap=4))
    pd.testing.assert_frame_equal(out[table.columns], table)  # raw values untouched
    snout = out[out.keypoint == "snout"].sort_values("frame")
    assert (snout.x.to_numpy()[12:14] == 999.0).all()
    assert np.allclose(snout.x_filtered.to_numpy()[12:14], frames[12:14] * 1.5, atol=1.0)
    tail = out[out.keypoint == "tail"]
    assert np.allclose(tail.y_filtered, 120.0)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="odd"):
        FilterConfig(window=4)
    with pytest.raises(ValueError, match="polyorder"):
        FilterConfig("savgol", window=5, polyorder=5)
    with pytest.raises(ValueError, match="unknown filter method 'kalman'"):
        FilterConfig("kalman")  # type: ignore[arg-type]
