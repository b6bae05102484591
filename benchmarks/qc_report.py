"""Size and build time of the QC report, on real labels with gaps and on an archive with a corrupt video.

    PYTHONPATH=. .venv/bin/python benchmarks/qc_report.py [--out results/bench-qc] [--screenshot]

1. Labels: assembles `../shared/data/lp-mirror-mouse` (17 keypoints, labels with gaps) and builds
   a report of its label section alone; prints the missing labels per keypoint as the page shows
   them, the page's size and the build time.
2. Archive: generates a synthetic archive of three videos (`posecore.synth`), truncates one of
   them, and runs the whole workflow on it with --keep-going and a small model (as the workflow
   tests do); the run fails on the corrupt video and its `onerror` builds the report over the
   rest. Then rebuilds that report once more, timed, and prints its size, the videos it lists as
   failed with their message, and the worst videos and stretches it shows.
With --screenshot, Chromium (headless) renders each page to a PNG next to it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from posecore.io.assemble import SplitConfig, assemble_dataset
from posecore.io.dataset import write_dataset
from posecore.io.labels import read_labels
from posecore.qc.archive import ArchiveConfig
from posecore.qc.report import build_report
from posecore.synth import SynthConfig, make_archive, truncate_video

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data" / "lp-mirror-mouse" / "CollectedData.csv"


def labels_report(out: Path) -> Path:
    """The label section of lp-mirror-mouse as a page; prints its numbers, size and build time."""
    names = list(read_labels(MIRROR).keypoint_names)
    dataset = assemble_dataset([MIRROR], keypoints=names, split=SplitConfig(seed=0))
    dataset_h5 = out / "lp-mirror-mouse.h5"
    write_dataset(dataset, dataset_h5)
    html = out / "labels" / "report.html"
    started = time.perf_counter()
    build_report(html, model_name="lp-mirror-mouse labels", trajectories_dir=out / "none", dataset_h5=dataset_h5)
    seconds = time.perf_counter() - started
    missing = (dataset.keypoints[..., 0] != dataset.keypoints[..., 0]).sum(axis=0)
    print(f"labels: {len(dataset.images)} frames, {len(names)} keypoints, {int(missing.sum())} missing labels")
    print("  missing per keypoint: " + ", ".join(f"{k} {int(m)}" for k, m in zip(names, missing, strict=True) if m))
    print(f"  report {html}: {html.stat().st_size / 1e6:.2f} MB, built in {seconds:.1f} s")
    return html


def archive_report(out: Path) -> Path:
    """The report over a generated archive with one corrupt video, after a real workflow run."""
    project = out / "archive"
    shutil.rmtree(project, ignore_errors=True)
    make_archive(project / "data", SynthConfig(n_videos=3, n_frames=120, n_labeled_per_video=40, seed=5))
    truncate_video(project / "data/videos/mouse-002.mp4", project / "data/broken.mp4", fraction=0.4)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["dataset"]["labels"] = ["data/labeled-data/*/CollectedData_synth.csv"]
    config["model"]["hyperparameters"] = {**config["model"]["hyperparameters"], "n_stacks": 1}
    config["train"] = {**config["train"], "max_epochs": 30}
    config["inference"] = {**config["inference"], "frames_per_shard": 4}  # 60 frames of 160x128
    (project / "config").mkdir()
    (project / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    rows = ["video\tpath\tlabeling\trefine", "mouse-000\tdata/videos/mouse-000.mp4\ttrue\tfalse"]
    rows += ["mouse-001\tdata/videos/mouse-001.mp4\tfalse\ttrue", "broken\tdata/broken.mp4\tfalse\tfalse"]
    (project / "config/videos.tsv").write_text("\n".join(rows) + "\n")
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow/Snakefile"), "--directory", str(project),
        "--workflow-profile", str(REPO / "profiles/default"), "--cores", "2",
    ]  # fmt: skip
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(f"archive: workflow exit {run.returncode} after {seconds:.0f} s (a failure is expected)")
    html = project / "results/qc/demo/report.html"
    if not html.exists():
        sys.exit(f"no report was built after the failed run:\n{run.stderr[-3000:]}")
    started = time.perf_counter()
    model = project / "results/models/demo"
    qc = build_report(
        html,
        model_name="demo",
        trajectories_dir=project / "results/trajectories/demo",
        probe_jsons=sorted((project / "results/videos").glob("*.json")),
        videos=["mouse-000", "mouse-001", "broken"],
        dataset_h5=project / "results/datasets/demo.h5",
        metrics_json=model / "eval/metrics.json",
        predictions_parquet=model / "eval/predictions.parquet",
        training_csv=model / "metrics.csv",
        logs_dir=project / "logs",
        benchmarks_dir=project / "benchmarks",
        records_dir=project / "results/predictions/demo/jobs",
        plan_tsv=project / "results/shards/plan.tsv",
        video_paths={
            "mouse-000": project / "data/videos/mouse-000.mp4",
            "mouse-001": project / "data/videos/mouse-001.mp4",
            "broken": project / "data/broken.mp4",
        },
        figures_dir=html.parent / "figures",
        config=ArchiveConfig.from_dict(config["qc"], "config: qc"),
    )
    seconds = time.perf_counter() - started
    print(f"  report {html}: {html.stat().st_size / 1e6:.2f} MB, rebuilt in {seconds:.1f} s, "
          f"{len(list((html.parent / 'figures').iterdir()))} figure and clip files")  # fmt: skip
    for video in qc.videos:  # worst first, as the page's table
        low = "-" if video.low_fraction is None else f"{100 * video.low_fraction:.1f} %"
        print(f"  {video.name}: {video.status}, {video.n_frames} frames, low-score {low}, {video.n_jumps} jumps, "
              f"worst stretch {video.window}{'; ' + video.failure if video.failure else ''}")  # fmt: skip
    return html


def screenshot(html: Path) -> None:
    """Render `html` with headless Chromium to a PNG beside it."""
    png = html.with_suffix(".png")
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--screenshot={png}", "--window-size=1200,4000", html.resolve().as_uri()]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    print(f"  screenshot: {png} ({'written' if png.exists() else 'not written'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench-qc")
    parser.add_argument("--screenshot", action="store_true", help="render each page with headless Chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pages = [labels_report(args.out), archive_report(args.out)]
    if args.screenshot:
        for page in pages:
            screenshot(page)


if __name__ == "__main__":
    main()
