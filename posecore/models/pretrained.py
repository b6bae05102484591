"""ImageNet weights for the ResNet backbone: torchvision's published files, through torch's hub cache.

`imagenet_weights(depth)` returns the state_dict of torchvision's ImageNet ResNet of that depth
(IMAGENET1K_V1, the weights torchvision's `resnet{depth}(weights=...)` loads). The file is
downloaded once from its published address into torch's hub cache (`$TORCH_HOME/hub/checkpoints`,
`~/.cache/torch/hub/checkpoints` by default), and read from there afterwards, with no network.
Its SHA-256 must begin with the hash its published name carries (`resnet50-0676ba61.pth`), both
when it is downloaded (`torch.hub`'s `check_hash`) and when it is read from the cache (torch does
not check a cached file; a truncated copy would otherwise load half its weights or fail oddly).
With no network and no cached file, the error says both ways to go on: copy the file into the
cache, or point `model.hyperparameters.weights_path` at a copy.

`read_resnet_weights(path)` reads a local torchvision-layout file (`weights_path`). No
torchvision is needed: posecore's ResNet has torchvision's module names.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

import torch

from posecore.errors import InputError

BASE_URL = "https://download.pytorch.org/models/"
# torchvision's ResNet<depth>_Weights.IMAGENET1K_V1 (torchvision/models/resnet.py); each name carries
# the first hex digits of the file's SHA-256.
IMAGENET_FILES = {
    18: "resnet18-f37072fd.pth",
    34: "resnet34-b627a593.pth",
    50: "resnet50-0676ba61.pth",
    101: "resnet101-63fe2227.pth",
    152: "resnet152-394f9c45.pth",
}
_HASH = re.compile(r"-([a-f0-9]{6,})\.")


def imagenet_url(depth: int) -> str:
    """The published address of torchvision's ImageNet ResNet of this depth."""
    if depth not in IMAGENET_FILES:
        raise ValueError(f"no ImageNet weights for depth {depth}; there are for {', '.join(map(str, IMAGENET_FILES))}")
    return BASE_URL + IMAGENET_FILES[depth]


def cached_file(url: str) -> Path:
    """Where torch's hub cache keeps the file of `url` ($TORCH_HOME/hub/checkpoints/<name>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def imagenet_weights(depth: int, url: str | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet ResNet weights of this depth from the hub cache, downloaded there once.

    Args:
        depth: 18, 34, 50, 101 or 152.
        url: where to download from (default: the published address, `imagenet_url(depth)`);
            its file name must carry the hash prefix.

    Raises:
        InputError: the cached file's hash is not the published one (naming the file), or the
            file is not cached and cannot be downloaded (naming the address and both ways to
            provide it without a network), or the download's hash is wrong.
    """
    url = url or imagenet_url(depth)
    path = cached_file(url)
    if path.is_file():
        check_published_hash(path)
    else:
        try:
            torch.hub.load_state_dict_from_url(url, check_hash=True, map_location="cpu", weights_only=True)
        except OSError as error:  # no network, DNS, refused, HTTP errors: urllib's URLError is an OSError
            raise InputError(
                url,
                f"cannot download the ImageNet weights of ResNet-{depth} ({error}). Without a network, "
                f"either copy that file (from a machine that has one: it is {path.name}) to {path} "
                "(torch's hub cache, under $TORCH_HOME; posecore then reads it with no network), "
                "or set model.hyperparameters.weights_path to a copy of it",
            ) from error
        except RuntimeError as error:  # torch.hub's "invalid hash value"; it has deleted the download
            raise InputError(url, f"the downloaded file is not the published one: {error}") from error
    return read_resnet_weights(path)


def check_published_hash(path: Path) -> None:
    """Refuse a file whose name carries a hash prefix (`name-<hex>.pth`) that its SHA-256 does not begin with."""
    match = _HASH.search(path.name)
    if match is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(match.group(1)):
        raise InputError(
            path,
            f"SHA-256 {digest.hexdigest()[:16]}... does not begin with {match.group(1)}, the hash its name "
            "publishes: an incomplete or altered copy; delete it (it is downloaded again) or copy it anew",
        )


def read_resnet_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A torchvision-layout state_dict from a local file (`module.` prefixes and a `state_dict` wrapper removed).

    Raises:
        InputError: the file is missing, or not a torch state_dict.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ResNet weights file not found (model.hyperparameters.weights_path)")
    check_published_hash(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(path, f"not a torch state_dict ({type(error).__name__}: {error})") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "not a state_dict (a mapping of weight names to tensors)")
    return {str(key).removeprefix("module."): value for key, value in state.items()}
