"""Parameters and multiply-accumulates of the original networks, built by their own code.

Runs in a separate environment that holds DeepPoseKit 0.3.9 (TensorFlow 2.15) and tf-slim, not
posecore's (see `benchmarks/fidelity.py`, which runs it and prints its figures beside posecore's):

    python3 -m venv /work/dpk-venv
    /work/dpk-venv/bin/pip install 'tensorflow-cpu==2.15.1' 'numpy<2' 'deepposekit==0.3.9' tf-slim
    /work/dpk-venv/bin/pip install scikit-learn opencv-python-headless
    /work/dpk-venv/bin/python benchmarks/fidelity_reference.py   # one JSON object on stdout

It builds DeepPoseKit's StackedDenseNet, StackedHourglass, LEAP and DeepLabCut (Keras) through
DeepPoseKit's TrainingGenerator, as a DeepPoseKit user does, and DeepLabCut 2's TensorFlow
single-animal ResNet-50 (`nnets/resnet.py`: tf-slim's resnet_v1_50 at output stride 16, then
`nnets/layers.py`'s 3x3 stride-2 transposed convolutions to the part maps and to the location
refinement maps) from tf-slim with DeepLabCut's arguments, since DeepLabCut itself needs its
whole toolbox. Weights are random: only the shapes matter. Multiply-accumulates are those of
the convolutions and transposed convolutions of one frame, read from the traced graph's
static shapes (BatchNorm, activations and pooling are not counted), as fidelity.py counts
posecore's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import warnings

warnings.filterwarnings("ignore")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

h5py.Dataset.value = property(lambda self: self[()])  # DeepPoseKit was written for h5py < 3
from deepposekit.io import DataGenerator, TrainingGenerator, initialize_dataset  # noqa: E402
from deepposekit.models import LEAP, DeepLabCut, StackedDenseNet, StackedHourglass  # noqa: E402

HEIGHT, WIDTH, N_KEYPOINTS = 480, 640, 4


def generator(channels: int, downsample_factor: int, use_graph: bool, work: Path) -> TrainingGenerator:
    """A DeepPoseKit TrainingGenerator over 4 blank frames with 4 keypoints (a star skeleton: 3 edges)."""
    images = np.zeros((4, HEIGHT, WIDTH, channels), np.uint8)
    skeleton = work / "skeleton.csv"
    names = [chr(ord("a") + i) for i in range(N_KEYPOINTS)]
    pd.DataFrame({"name": names, "parent": [None] + ["a"] * (N_KEYPOINTS - 1), "swap": [None] * N_KEYPOINTS}).to_csv(
        skeleton, index=False
    )
    keypoints = np.random.default_rng(0).uniform(10, 400, size=(4, N_KEYPOINTS, 2))
    dataset = work / f"dataset-{channels}.h5"
    initialize_dataset(
        datapath=str(dataset), images=images, skeleton=str(skeleton), keypoints=keypoints, overwrite=True
    )
    with h5py.File(dataset, "r+") as f:
        f["annotated"][...] = True
    return TrainingGenerator(
        DataGenerator(str(dataset)),
        downsample_factor=downsample_factor,
        augmenter=None,
        sigma=5,
        validation_split=0,
        use_graph=use_graph,
        random_seed=1,
    )


def graph_macs(graph: tf.Graph) -> tuple[int, int]:
    """(multiply-accumulates, number of convolutions) of the Conv2D and transposed-convolution ops of a graph.

    The graph is traced for one frame; a batch above 1 is TensorFlow's space-to-batch form of a
    dilated convolution (its blocks of the frame), so it counts.
    """
    macs = convs = 0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            out = op.outputs[0].shape.as_list()  # (blocks, h, w, C_out)
            kh, kw, cin, cout = op.inputs[1].shape.as_list()
            macs += out[0] * out[1] * out[2] * kh * kw * cin * cout
            convs += 1
        elif op.type == "Conv2DBackpropInput":  # a transposed convolution: inputs (sizes, filter, input)
            kh, kw, cout, cin = op.inputs[1].shape.as_list()
            source = op.inputs[2].shape.as_list()  # (blocks, h, w, C_in)
            macs += source[0] * source[1] * source[2] * kh * kw * cin * cout
            convs += 1
    return macs, convs


def keras_figures(model: tf.keras.Model, channels: int) -> dict:
    """Parameters (trainable; all, with BatchNorm statistics, as Keras counts them) and MACs of one frame."""
    function = tf.function(lambda x: model(x, training=False))
    graph = function.get_concrete_function(tf.TensorSpec([1, HEIGHT, WIDTH, channels], tf.float32)).graph
    macs, convs = graph_macs(graph)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"params": trainable, "params_all": int(model.count_params()), "macs": int(macs), "convs": convs}


def deeplabcut_tf(n_keypoints: int, locref: bool) -> dict:
    """DeepLabCut 2's single-animal resnet_50 pose_net, from tf-slim with DeepLabCut's arguments."""
    import importlib

    # TensorFlow 2.15 looks for tf.layers' BatchNormalization in tf_keras, whose 2.15 releases keep it
    # elsewhere; Keras 2.15 (installed with TensorFlow) has the same module.
    sys.modules.setdefault(
        "tf_keras.legacy_tf_layers.normalization", importlib.import_module("keras.src.legacy_tf_layers.normalization")
    )
    import tf_slim as slim
    from tf_slim.nets import resnet_v1

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, HEIGHT, WIDTH, 3])
        with slim.arg_scope(resnet_v1.resnet_arg_scope()):
            features, _ = resnet_v1.resnet_v1_50(images, global_pool=False, output_stride=16, is_training=False)
        heads = {"part_pred": n_keypoints, "locref_pred": 2 * n_keypoints} if locref else {"part_pred": n_keypoints}
        with slim.arg_scope([slim.conv2d_transpose], padding="SAME", activation_fn=None, normalizer_fn=None):
            for name, outputs in heads.items():
                with tf.compat.v1.variable_scope(name):
                    slim.conv2d_transpose(features, outputs, kernel_size=[3, 3], stride=2, scope="block4")
        trainable = sum(int(np.prod(v.shape)) for v in tf.compat.v1.trainable_variables())
        every = sum(int(np.prod(v.shape)) for v in tf.compat.v1.global_variables())
    macs, convs = graph_macs(graph)
    return {"params": trainable, "params_all": every, "macs": int(macs), "convs": convs}


def main() -> None:
    """Print one JSON object: figures of each original, keyed as fidelity.py's table."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix="fidelity-") as folder:
        work = Path(folder)
        plain = generator(3, 2, False, work)
        graph = generator(3, 2, True, work)
        grey = generator(1, 0, False, work)
        models = {
            "dpk_densenet_defaults": lambda: StackedDenseNet(plain, pretrained=False),
            "dpk_densenet_paper": lambda: StackedDenseNet(plain, n_stacks=2, growth_rate=32, pretrained=False),
            "dpk_densenet_paper_graph": lambda: StackedDenseNet(graph, n_stacks=2, growth_rate=32, pretrained=False),
            "dpk_hourglass_defaults": lambda: StackedHourglass(plain),
            "dpk_hourglass_2_stacks": lambda: StackedHourglass(plain, n_stacks=2),
            "dpk_leap_defaults": lambda: LEAP(grey),
            "dpk_deeplabcut_resnet50": lambda: DeepLabCut(generator(3, 3, False, work), weights=None),
        }
        for key, build in models.items():
            model = build()
            channels = 1 if key.startswith("dpk_leap") else 3
            figures[key] = keras_figures(model.train_model, channels)
            figures[key]["outputs"] = len(model.train_model.outputs)
            figures[key]["n_output_channels"] = int(model.train_generator.n_output_channels)
            tf.keras.backend.clear_session()
    figures["dlc_tf_resnet50"] = deeplabcut_tf(N_KEYPOINTS, locref=True)
    figures["dlc_tf_resnet50_no_locref"] = deeplabcut_tf(N_KEYPOINTS, locref=False)
    json.dump(figures, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
