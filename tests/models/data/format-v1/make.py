"""Write the format-1 model files of the export tests, with the posecore of commit f28b869.

Run once at that commit (the last whose exported files were format 1), from the repository root:
    PYTHONPATH=.:tests/models python tests/models/data/format-v1/make.py
It writes, beside itself, one exported model per architecture (`<architecture>.pt`, with the
seeded weights of `conftest.seeded_state_dict`; `resnet_deconv` is too large to keep, so only
its weight names and shapes are kept, in `expected.pt`), and `expected.pt`: the input and each
model's outputs on it, which the models loaded by a later posecore must reproduce exactly.
"""

from pathlib import Path

import torch
from conftest import seeded_state_dict

from posecore.models import ModelMeta, build_model, save_model
from posecore.models.registry import hyperparameter_defaults

HERE = Path(__file__).parent
MODELS = {
    # The network config/config.yaml trained at that commit, and small ones of the others.
    "stacked_densenet": ({"n_stacks": 2, "growth_rate": 16}, 3),
    "stacked_hourglass": ({"n_features": 8, "n_transitions": 1, "n_graph_maps": 2}, 3),
    "leap": ({"filters": 4, "batch_norm": True}, 1),
    "resnet_deconv": ({"depth": 18, "deconv_channels": 8, "n_deconv": 1}, 3),
}

expected = {"input": {}, "outputs": {}, "spec": {}}
for seed, (name, (hyperparameters, channels)) in enumerate(MODELS.items()):
    model = build_model(name, 2, channels, **hyperparameters)
    spec = [(key, list(value.shape), str(value.dtype)) for key, value in model.state_dict().items()]
    model.load_state_dict(seeded_state_dict(spec, seed))
    model.eval()
    x = torch.randn(1, channels, 32, 64, generator=torch.Generator().manual_seed(100 + seed))
    with torch.no_grad():
        outputs = [maps.clone() for maps in model(x)]
    meta = ModelMeta(
        architecture=name,
        hyperparameters={**hyperparameter_defaults(name), **hyperparameters},  # as posecore.train.fit writes them
        keypoint_names=("nose", "tail"),
        input_size=(32, 64),
        in_channels=channels,
        mean=(128.0,) * channels,
        std=(64.0,) * channels,
        output_stride=model.output_stride,
    )
    if name == "resnet_deconv":
        expected["spec"][name] = spec
        expected["meta"] = meta.to_dict()
    else:
        save_model(HERE / f"{name}.pt", model, meta)
    expected["input"][name] = x
    expected["outputs"][name] = outputs
torch.save(expected, HERE / "expected.pt")
