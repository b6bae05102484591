"""Keypoints from images with an exported model: the one path that evaluation and video inference share.

Steps, per batch: uint8 (B, H, W, C) -> float, normalised with the model's mean and std ->
padded at the bottom and right to a multiple of the model's `input_multiple` (so pixel
coordinates do not move) -> forward under `torch.inference_mode()` -> the final stack's maps,
cropped to the cells that cover the image -> `posecore.ops.decode.decode_peaks` (map cells):
each map's global maximum, then the single-animal prior, which moves a peak that lies off the
animal to its map's best maximum on it (`posecore.ops.single_animal`), then the layout prior,
which moves a keypoint found where the training labels never put it relative to the others
(the wrong paw) to another maximum of its map (`posecore.ops.layout`); models trained before
the priors store no label statistics and skip them -> `posecore.geometry.map_to_image` (image
pixels). Training prepares its images with the same `prepare_images` and decodes its
validation maps with the same `decode_peaks`, so training and inference cannot differ in
either.

Speed (what the `Predictor` does to its own copy of the model, none of which changes what the
model computes beyond float rounding): every convolution that a `BatchNorm2d` directly follows
inside an `nn.Sequential` absorbs it (`fold_batchnorm`); activations and weights are
channels-last (NHWC, the layout oneDNN's and cuDNN's fast convolutions use); on a GPU the
forward runs under bfloat16 autocast and `torch.compile` (`precision` and `compile` say when).
In bfloat16 on the CPU the weights themselves are cast to bfloat16 once, and each batch on its
way in, instead of autocast: the same convolutions, without autocast's casts at every call
(1.13x the forward of DeepPoseKit's network, `benchmarks/RESULTS.md`).
A compiled model sees only full batches (a short last batch is padded), so it compiles once;
if compiling fails (no C++ compiler on the node, an operator inductor cannot lower), the
predictor warns and runs the model uncompiled.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from posecore.geometry import map_to_image
from posecore.models.export import LoadedModel
from posecore.ops.decode import decode_peaks

Precision = Literal["auto", "float32", "bfloat16"]
CompileMode = Literal["auto", "always", "never"]


def resolve_device(device: Literal["auto", "cpu", "cuda"]) -> str:
    """The torch device for a config's `device`: auto takes a GPU when one is visible."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; known: auto, cpu, cuda")
    return device


def prepare_images(
    images: np.ndarray | torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    multiple: int,
    device: str | torch.device = "cpu",
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Normalise uint8 images and pad them to a multiple of `multiple`.

    Args:
        images: uint8 (B, H, W, C), or (B, H, W) for one channel.
        mean: per-channel mean (C) in uint8 units.
        std: per-channel standard deviation (C) in uint8 units.
        multiple: H and W are padded at the bottom and right up to a multiple of it; padded
            pixels are 0 after normalisation (the mean colour).
        device: where the result lives (the uint8 batch is moved first, which is cheaper).
        memory_format: the result's layout; `torch.channels_last` keeps the images' own
            (B, H, W, C) order in memory and saves a transpose.

    Returns:
        float32 (B, C, H', W') with H' and W' multiples of `multiple`.
    """
    batch = torch.as_tensor(images)
    if batch.ndim == 3:
        batch = batch.unsqueeze(-1)  # (B, H, W, 1)
    if batch.ndim != 4 or batch.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (B, H, W, C), got {batch.dtype} {tuple(batch.shape)}")
    if batch.shape[-1] != len(mean):
        raise ValueError(f"images have {batch.shape[-1]} channels, the model takes {len(mean)}")
    batch = batch.to(device, non_blocking=True).contiguous()  # (B, H, W, C)
    n, height, width, channels = batch.shape
    # Normalised row by row of the (B, H, W, C) memory, each row's W * C values against the
    # channels' mean and std repeated W times: the same float32 subtraction and division per
    # value as broadcasting over C, several times faster than broadcasting over a last axis of 3.
    mean_row = np.tile(np.asarray(mean, dtype=np.float32), width)  # (W * C,)
    std_row = np.tile(np.asarray(std, dtype=np.float32), width)  # (W * C,)
    if batch.device.type == "cpu":
        # numpy converts and subtracts in one pass, where torch takes three (twice as fast).
        rows_np = np.empty((n * height, width * channels), dtype=np.float32)
        np.subtract(batch.numpy().reshape(rows_np.shape), mean_row, out=rows_np, dtype=np.float32)
        rows = torch.from_numpy(np.divide(rows_np, std_row, out=rows_np))  # (B * H, W * C)
    else:
        mean_t, std_t = (torch.from_numpy(row).to(batch.device) for row in (mean_row, std_row))
        rows = batch.view(n * height, width * channels).float().sub_(mean_t).div_(std_t)  # (B * H, W * C)
    pad_h = math.ceil(height / multiple) * multiple - height
    pad_w = math.ceil(width / multiple) * multiple - width
    nhwc = rows.view(n, height, width, channels)
    if pad_h or pad_w:
        padded = nhwc.new_zeros((n, height + pad_h, width + pad_w, channels))  # (B, H', W', C), padding already 0
        padded[:, :height, :width] = nhwc
        nhwc = padded
    # (B, C, H', W') over (B, H', W', C) memory: channels-last as it stands.
    return nhwc.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold the model's BatchNorms into its convolutions, for inference; exact up to float rounding.

    Works in place on `module` (give it a copy), in eval mode, on chains of modules inside
    `nn.Sequential`s (nested sequentials count as one chain):

    - Conv2d then BatchNorm2d: the convolution takes the normalisation's scale into its
      weights and its shift into its bias.
    - BatchNorm2d, ReLU, then a 1x1 Conv2d (a pre-activation, as in DenseNet-BC and ResNet v2):
      with a = gamma / sqrt(var + eps) and b = beta - a * mean, relu(a x + b) equals
      a * clamp(x, lo, hi) + b, where the clamp bound is -b / a (a lower bound where a > 0,
      an upper one where a < 0). So the three layers become one `ClampConv`: a clamp (one
      pass over the features instead of two) then the convolution with a folded into its
      weights and b into its bias.

    Folded modules become `nn.Identity`. Anything else (a BatchNorm after a concatenation and
    before a 3x3 convolution, say) stays as it is.

    Returns:
        `module`, for chaining.
    """
    if module.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    for child in list(module.modules()):
        if not _plain_sequential(child):
            continue
        chain = _flatten(child)
        for (parent_a, name_a, first), (parent_b, name_b, second) in itertools.pairwise(chain):
            if type(first) is nn.Conv2d and _is_folding_batchnorm(second, first.out_channels):
                setattr(parent_a, name_a, fuse_conv_bn_eval(first, second))
                setattr(parent_b, name_b, nn.Identity())
        chain = _flatten(child)
        for (pa, na, bn), (pb, nb, relu), (pc, nc, conv) in zip(chain, chain[1:], chain[2:], strict=False):
            if (
                type(relu) is nn.ReLU
                and type(conv) is nn.Conv2d
                and _is_folding_batchnorm(bn, conv.in_channels)
                and conv.kernel_size == (1, 1)
                and conv.stride == (1, 1)
                and conv.padding == (0, 0)
                and conv.groups == 1
            ):
                setattr(pc, nc, ClampConv(bn, conv))
                setattr(pa, na, nn.Identity())
                setattr(pb, nb, nn.Identity())
    return module


def _is_folding_batchnorm(module: nn.Module, channels: int) -> bool:
    """Whether `module` is a BatchNorm2d over `channels` channels that normalises with running statistics."""
    return type(module) is nn.BatchNorm2d and module.track_running_stats and module.num_features == channels


class ClampConv(nn.Module):
    """BatchNorm2d, ReLU and a 1x1 Conv2d (eval mode) as a per-channel clamp and one convolution.

    (B, C, H, W) -> (B, C_out, H, W), equal to conv(relu(bn(x))) up to float rounding (see
    `fold_batchnorm`).
    """

    def __init__(self, bn: nn.BatchNorm2d, conv: nn.Conv2d) -> None:
        super().__init__()
        with torch.no_grad():
            a = torch.rsqrt(bn.running_var + bn.eps)  # (C,)
            if bn.weight is not None:
                a = a * bn.weight
            b = -bn.running_mean * a + (bn.bias if bn.bias is not None else 0.0)  # (C,)
            zero = a == 0
            bound = torch.where(zero, torch.zeros_like(b), -b / torch.where(zero, torch.ones_like(a), a))
            inf = torch.full_like(b, math.inf)
            lo = torch.where(a > 0, bound, torch.where(zero, 0.0, -inf))
            hi = torch.where(a < 0, bound, torch.where(zero, 0.0, inf))
            shift = torch.where(zero, b.clamp_min(0.0), b)  # where a == 0 the output is relu(b)
            weight = conv.weight * a.view(1, -1, 1, 1)  # (C_out, C, 1, 1)
            bias = conv.weight.flatten(1) @ shift + (conv.bias if conv.bias is not None else 0.0)  # (C_out,)
        self.register_buffer("lo", lo.view(1, -1, 1, 1))
        self.register_buffer("hi", hi.view(1, -1, 1, 1))
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=True).to(conv.weight.device)
        self.conv.weight = nn.Parameter(weight, requires_grad=False)
        self.conv.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv(relu(bn(x))) for x (B, C, H, W)."""
        return self.conv(torch.clamp(x, self.lo, self.hi))


def _plain_sequential(module: nn.Module) -> bool:
    """Whether `module` runs its children one after the other (an nn.Sequential whose forward is not overridden)."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _flatten(sequential: nn.Sequential) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, leaf) of every module in execution order, descending into plain sequentials."""
    chain = []
    for name, child in sequential.named_children():
        if _plain_sequential(child):
            chain.extend(_flatten(child))
        else:
            chain.append((sequential, name, child))
    return chain


class Predictor:
    """Keypoints (x, y, score) in image pixels from uint8 images, with one loaded model.

    Args:
        loaded: a model from `posecore.models.load_model`; the predictor works on its own copy.
        device: "cpu", "cuda" or "cuda:N"; the copy is moved there.
        batch_size: images per forward pass.
        precision: "auto" runs bfloat16 autocast on a GPU and float32 on the CPU; "float32"
            and "bfloat16" ask for one everywhere. On a CPU with AMX matrix units bfloat16
            runs DeepPoseKit's Stacked DenseNet 1.6-1.9 times as fast (`benchmarks/RESULTS.md`);
            on CPUs without them it is emulated and slower than float32.
        compile: "auto" compiles the model with `torch.compile` on a GPU only; "always" and
            "never" say so. On the CPU (inductor with freezing) it made the forward no faster
            once glibc used huge pages (`posecore.hugepages`; 5.67 against 5.84 frames/s for
            DeepPoseKit's default Stacked DenseNet, `benchmarks/RESULTS.md`), after 43 s of
            compilation, so "auto" leaves it off there.
        priors: decode with the priors learned from the training labels (the single-animal
            and layout priors, `posecore.ops.decode`); False takes each map's global maximum,
            for a camera or a behaviour that the training labels do not cover.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        *,
        precision: Precision = "auto",
        compile: CompileMode = "auto",
        priors: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"unknown precision {precision!r}; known: auto, float32, bfloat16")
        if compile not in ("auto", "always", "never"):
            raise ValueError(f"unknown compile mode {compile!r}; known: auto, always, never")
        self.loaded = loaded
        self.meta = loaded.meta
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.priors = bool(priors)
        # The priors' label statistics for `decode_peaks`; none turns them off.
        self._label_stats = (self.meta.extent_px, self.meta.offset_ranges) if self.priors else ()
        on_gpu = self.device.type == "cuda"
        self.dtype = torch.bfloat16 if precision == "bfloat16" or (precision == "auto" and on_gpu) else torch.float32
        self.memory_format = torch.channels_last
        model = fold_batchnorm(copy.deepcopy(loaded.model).eval())
        # In bfloat16 on the CPU: the weights cast once (autocast would cast them at every call).
        self._cast = self.dtype == torch.bfloat16 and self.device.type == "cpu"
        self.model = model.to(self.device, self.dtype if self._cast else None, memory_format=self.memory_format)
        self.stride = int(self.meta.output_stride)
        self.multiple = int(getattr(loaded.model, "input_multiple", self.stride))
        self._compiled: nn.Module | None = None
        if compile == "always" or (compile == "auto" and on_gpu):
            if not on_gpu:
                import torch._inductor.config as inductor_config

                inductor_config.freezing = True  # weights as constants: prepacked oneDNN kernels (a global setting)
            self._compiled = torch.compile(self.model, dynamic=False)

    @property
    def compiled(self) -> bool:
        """Whether the forward runs compiled (False after a failed compilation too)."""
        return self._compiled is not None

    def autocast(self) -> torch.autocast:
        """The autocast context the forward runs in (enabled for bfloat16 on a GPU)."""
        enabled = self.dtype != torch.float32 and not self._cast
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The model's outputs (one map tensor per stack) for a batch from `prepare_images`, compiled when it can be."""
        if self._cast:
            x = x.to(self.dtype)
        if self._compiled is None:
            return self.model(x)
        n = len(x)
        if n < self.batch_size:  # the same shape every time: no recompilation for a short last batch
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))]).contiguous(
                memory_format=self.memory_format
            )
        try:
            outputs = self._compiled(x)
        except Exception as error:  # any compiler failure: the eager model still works
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}: {message}); running the model uncompiled",
                RuntimeWarning,
                stacklevel=3,
            )
            self._compiled = None
            return self.model(x[:n])
        return [out[:n] for out in outputs]

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """The K keypoint names, in the order of the predictions' second axis."""
        return self.meta.keypoint_names

    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Predict keypoints.

        Args:
            images: uint8 (B, H, W, C) (or (B, H, W) for grey models), any H and W.

        Returns:
            float32 (B, K, 3): x (column), y (row) in image pixels with the centre of the top-left
            pixel at (0, 0), and the confidence-map peak value as score.
        """
        n = len(images)
        out = np.empty((n, self.meta.n_keypoints, 3), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            batch = images[start : start + self.batch_size]
            out[start : start + len(batch)] = self._predict_batch(batch).cpu().numpy()
        return out

    @torch.inference_mode()
    def maps(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The final stack's confidence maps, float32 (B, K, ceil(H / s), ceil(W / s)), for uint8 (B, H, W, C)."""
        height, width = images.shape[1], images.shape[2]
        x = prepare_images(images, self.meta.mean, self.meta.std, self.multiple, self.device, self.memory_format)
        with self.autocast():
            # The final output; keypoint maps first, posture-graph maps (if any) after them.
            maps = self.forward(x)[-1][:, : self.meta.n_keypoints]  # (B, K, H' / s, W' / s)
        return maps[..., : math.ceil(height / self.stride), : math.ceil(width / self.stride)].float()

    @torch.inference_mode()
    def _predict_batch(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) uint8 -> (B, K, 3) in image pixels, on the model's device."""
        peaks = decode_peaks(self.maps(images), self.stride, *self._label_stats)  # (B, K, 3) map cells
        xy = map_to_image(peaks[..., :2], self.stride)  # (B, K, 2) image pixels
        return torch.cat([xy, peaks[..., 2:]], dim=-1)
