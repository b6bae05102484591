import pandas as pd

from posecore.cli import main


def test_synth_writes_an_archive_then_keeps_it(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["synth", str(out), "--videos", "1", "--frames", "16", "--labeled", "4", "--seed", "2"]
    assert main(args) == 0
    assert "wrote 1 videos of 16 frames" in capsys.readouterr().out
    labels = pd.read_csv(out / "labeled-data/mouse-000/CollectedData_synth.csv", header=[0, 1, 2], index_col=0)
    assert len(labels) == 4 and (out / "videos/mouse-000.mp4").is_file()
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main([*args[:-1], "3"]) == 0  # another seed: made again
    assert "wrote" in capsys.readouterr().out


def test_synth_refuses_bad_settings_naming_them(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--frames", "10", "--labeled", "20"]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "x") in error and "n_labeled_per_video (20)" in error
    assert not (tmp_path / "x").exists()
