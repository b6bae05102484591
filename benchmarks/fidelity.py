"""Are posecore's models the published ones? Parameters and multiply-accumulates beside the originals'.

    PYTHONPATH=. .venv/bin/python benchmarks/fidelity.py
    PYTHONPATH=. .venv/bin/python benchmarks/fidelity.py --reference-python /work/dpk-venv/bin/python

For each model at 640x480 and 4 keypoints, with each original's documented default settings
(and the settings DeepPoseKit's paper and examples use), it prints posecore's trainable
parameters, convolutions and multiply-accumulates (MACs) per frame beside those of the
original's own implementation, and their ratios. The originals' figures come from
`benchmarks/fidelity_reference.py`, which builds them with their own code (DeepPoseKit 0.3.9,
tf-slim for DeepLabCut 2's ResNet-50) in the environment that holds them: with
`--reference-python` it is run now, otherwise the figures it printed when this script was
written are used (`RECORDED`, with the command that made them). MACs count the convolutions and
transposed convolutions only (BatchNorm, activations and pooling are left out), the same way for
both sides; posecore's are counted from the layer shapes on PyTorch's meta device, so nothing
is computed and the script takes seconds.

The lighter networks posecore trains by default (`densenet_lite`, `hourglass_lite`) and the
format-1 variants are listed beside the original they are lighter or heavier than.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from posecore.models.registry import build_model

HEIGHT, WIDTH, N_KEYPOINTS = 480, 640, 4

# /work/dpk-venv/bin/python benchmarks/fidelity_reference.py (DeepPoseKit 0.3.9, TensorFlow 2.15.1,
# tf-slim 1.1.0), run on 2025-12-05. params: trainable; params_all: with BatchNorm statistics (Keras'
# count_params); macs: convolutions' multiply-accumulates of one 640x480 frame.
RECORDED = {
    "dpk_densenet_defaults": {"params": 1542346, "params_all": 1542362, "macs": 8786082600, "convs": 35},
    "dpk_densenet_paper": {"params": 1422182, "params_all": 1422206, "macs": 6628483200, "convs": 60},
    "dpk_densenet_paper_graph": {"params": 1446357, "params_all": 1446417, "macs": 6830375400, "convs": 60},
    "dpk_hourglass_defaults": {"params": 3549956, "params_all": 3587844, "macs": 45062553600, "convs": 51},
    "dpk_hourglass_2_stacks": {"params": 6485776, "params_all": 6557464, "macs": 63976243200, "convs": 94},
    "dpk_leap_defaults": {"params": 2513668, "params_all": 2513668, "macs": 108114739200, "convs": 13},
    "dpk_deeplabcut_resnet50": {"params": 23608324, "params_all": 23661444, "macs": 37144166400, "convs": 54},
    "dlc_tf_resnet50": {"params": 23729228, "params_all": 23782348, "macs": 35787571200, "convs": 55},
    "dlc_tf_resnet50_no_locref": {"params": 23581764, "params_all": 23634884, "macs": 35610624000, "convs": 54},
}


@dataclass(frozen=True)
class Row:
    """One comparison: a posecore model at some settings, and the original it is set against."""

    architecture: str
    settings: str
    hyperparameters: dict = field(default_factory=dict)
    in_channels: int = 3
    reference: str = ""
    original: str = ""


ROWS = [
    Row(
        "stacked_densenet",
        "DeepPoseKit's defaults: 1 stack, growth 48",
        {},
        3,
        "dpk_densenet_defaults",
        "DeepPoseKit StackedDenseNet()",
    ),
    Row(
        "stacked_densenet",
        "2 stacks, growth 32 (DeepPoseKit's paper)",
        {"n_stacks": 2, "growth_rate": 32},
        3,
        "dpk_densenet_paper",
        "DeepPoseKit StackedDenseNet(n_stacks=2, growth_rate=32)",
    ),
    Row(
        "stacked_densenet",
        "the same, with posture-graph maps (10 out)",
        {"n_stacks": 2, "growth_rate": 32, "n_graph_maps": 6},
        3,
        "dpk_densenet_paper_graph",
        "the same, use_graph=True (4 keypoints, 3 edges: 10 maps)",
    ),
    Row(
        "densenet_lite",
        "config.yaml: 2 stacks, growth 16",
        {"n_stacks": 2, "growth_rate": 16},
        3,
        "dpk_densenet_paper",
        "(posecore's own; DeepPoseKit's at 2 stacks, growth 32)",
    ),
    Row(
        "densenet_lite",
        "2 stacks, growth 32",
        {"n_stacks": 2, "growth_rate": 32},
        3,
        "dpk_densenet_paper",
        "(posecore's own; DeepPoseKit's at 2 stacks, growth 32)",
    ),
    Row(
        "stacked_hourglass",
        "DeepPoseKit's defaults: 1 stack, 256 filters",
        {},
        3,
        "dpk_hourglass_defaults",
        "DeepPoseKit StackedHourglass()",
    ),
    Row(
        "stacked_hourglass",
        "2 stacks, 256 filters",
        {"n_stacks": 2},
        3,
        "dpk_hourglass_2_stacks",
        "DeepPoseKit StackedHourglass(n_stacks=2)",
    ),
    Row(
        "hourglass_lite",
        "its defaults: 2 stacks, 64 features",
        {},
        3,
        "dpk_hourglass_2_stacks",
        "(posecore's own; DeepPoseKit's at 2 stacks)",
    ),
    Row(
        "leap",
        "LEAP's defaults: grey, 64 filters",
        {},
        1,
        "dpk_leap_defaults",
        "DeepPoseKit LEAP() (= talmo/leap leap_cnn, read)",
    ),
    Row(
        "leap",
        "format-1 decoder (output_layer conv)",
        {"output_layer": "conv"},
        1,
        "dpk_leap_defaults",
        "(posecore's earlier; LEAP's)",
    ),
    Row(
        "resnet_deconv",
        "DeepLabCut's resnet_50: stride 8",
        {},
        3,
        "dlc_tf_resnet50",
        "DeepLabCut 2 TF pose_net resnet_50 (tf-slim), with locref",
    ),
    Row("resnet_deconv", "the same", {}, 3, "dlc_tf_resnet50_no_locref", "the same without its locref maps"),
    Row("resnet_deconv", "the same", {}, 3, "dpk_deeplabcut_resnet50", "DeepPoseKit DeepLabCut() (Keras ResNet50)"),
]


def posecore_figures(row: Row) -> dict:
    """Trainable parameters, convolutions and MACs of one frame of posecore's model, on the meta device."""
    with torch.device("meta"):
        model = build_model(row.architecture, N_KEYPOINTS, row.in_channels, **row.hyperparameters).eval()
        macs = convs = 0

        def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            nonlocal macs, convs
            kernel = module.kernel_size[0] * module.kernel_size[1]
            if isinstance(module, nn.ConvTranspose2d):  # every input cell spreads over kernel x C_out outputs
                macs += inputs[0][0].numel() * kernel * module.out_channels // module.groups
            else:
                macs += output[0].numel() * kernel * module.in_channels // module.groups
            convs += 1

        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.register_forward_hook(count)
        with torch.no_grad():
            model(torch.empty(1, row.in_channels, HEIGHT, WIDTH))
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "macs": macs, "convs": convs}


def reference_figures(python: str | None) -> tuple[dict, str]:
    """The originals' figures: run fidelity_reference.py under `python`, or the recorded ones."""
    if not python:
        return RECORDED, "recorded (RECORDED in benchmarks/fidelity.py)"
    script = Path(__file__).with_name("fidelity_reference.py")
    done = subprocess.run([python, str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{script} failed under {python}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), f"measured now by {python} {script.name}"


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", help="python of the environment holding DeepPoseKit and tf-slim")
    args = parser.parse_args()
    references, source = reference_figures(args.reference_python)
    print(f"640x480, {N_KEYPOINTS} keypoints; originals' figures: {source}")
    print("params: trainable parameters; MACs: multiply-accumulates of the convolutions for one frame\n")
    header = (
        f"{'posecore model':18} {'settings':46} {'params':>11} {'original':>11} {'ratio':>6} "
        f"{'GMACs':>7} {'original':>8} {'ratio':>6} {'convs':>9}  original implementation"
    )
    print(header)
    print("-" * len(header))
    for row in ROWS:
        ours = posecore_figures(row)
        theirs = references[row.reference]
        print(
            f"{row.architecture:18} {row.settings:46} {ours['params']:>11,} {theirs['params']:>11,} "
            f"{ours['params'] / theirs['params']:>6.3f} {ours['macs'] / 1e9:>7.2f} {theirs['macs'] / 1e9:>8.2f} "
            f"{ours['macs'] / theirs['macs']:>6.3f} {ours['convs']:>4}/{theirs['convs']:<4}  {row.original}"
        )


if __name__ == "__main__":
    main()
