import os

from posecore.io.history import keep_outputs


def test_outputs_are_linked_into_a_new_entry_and_old_entries_go(tmp_path):
    model = tmp_path / "model.pt"
    curves = tmp_path / "metrics.csv"
    (tmp_path / "checkpoints").mkdir()
    entries = []
    for version in range(4):
        model.write_bytes(f"weights {version}".encode())
        curves.write_text(f"curve {version}")
        entries.append(keep_outputs([model, curves, tmp_path / "checkpoints"], tmp_path / "history", f"v{version}"))
        # A retrain replaces the outputs (Snakemake removes them first): the entry keeps its own.
        model.unlink()
        curves.unlink()
    kept = sorted(p.name for p in (tmp_path / "history").iterdir())
    assert kept == [e.name for e in entries[1:]], "the newest three stay, oldest first removed"
    assert (entries[-1] / "model.pt").read_bytes() == b"weights 3"
    assert sorted(p.name for p in entries[-1].iterdir()) == ["metrics.csv", "model.pt"]
    assert entries[-1].name.endswith("-v3")


def test_a_kept_file_is_a_link_not_a_copy_while_the_output_is_there(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    entry = keep_outputs([model], tmp_path / "history", "x")
    assert os.stat(entry / "model.pt").st_ino == os.stat(model).st_ino
