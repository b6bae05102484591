"""Peak finding speed (maps/s, effective GB/s) and subpixel accuracy on generated Gaussian maps.

    python benchmarks/peaks.py                 # speed: reference on the CPU; kernel and reference on a GPU
    python benchmarks/peaks.py --accuracy      # median error with and without noise
    python benchmarks/peaks.py --model         # peak finding against a small model's forward time (CPU)

Speed: medians over --repeats timed calls, inference-sized batches (B = 64, K = 4 to 32, maps
64x64 to 120x160). Effective GB/s counts one read of the maps and the (B, K, 3) float32 output.
Each row also checks its output against the CPU reference on the same random maps: the largest
subpixel difference |dxy| (map cells) and the number of scores that differ.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from posecore.ops.multipeak import find_peaks_multi
from posecore.ops.peaks import find_peaks_reference, triton_available

SHAPES = [(64, 6, 32, 40), (64, 4, 64, 64), (64, 17, 64, 64), (64, 17, 120, 160), (64, 32, 120, 160)]


def median_seconds(fn: Callable[[], object], repeats: int, cuda: bool) -> float:
    """Median wall time of `fn()` over `repeats` calls after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(repeats: int, dtype: torch.dtype) -> None:
    """Print the speed table for the reference (CPU, and GPU if any) and the kernel (GPU)."""
    cuda = torch.cuda.is_available()
    impls: list[tuple[str, str, Callable[[torch.Tensor], torch.Tensor]]] = [("reference", "cpu", find_peaks_reference)]
    if cuda:
        impls.append(("reference", "cuda", find_peaks_reference))
        if triton_available():
            from posecore.ops.peaks_triton import find_peaks_triton

            impls.append(("triton", "cuda", find_peaks_triton))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, dtype {dtype}")
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name()}")
    print(
        f"{'impl':<10} {'device':<6} {'B':>3} {'K':>3} {'H':>4} {'W':>4} {'ms':>9} {'maps/s':>12} {'GB/s':>8} "
        f"{'max |dxy|':>10} {'score !=':>8}"
    )
    for b, k, h, w in SHAPES:
        cpu_maps = torch.rand(b, k, h, w, generator=torch.Generator().manual_seed(0)).to(dtype)
        expected = find_peaks_reference(cpu_maps)
        for name, device, fn in impls:
            maps = cpu_maps.to(device)
            seconds = median_seconds(lambda fn=fn, maps=maps: fn(maps), repeats, device == "cuda")
            moved = maps.numel() * maps.element_size() + b * k * 3 * 4
            # Against the CPU reference on the same maps: subpixel offsets, and scores that differ at all.
            got = fn(maps).cpu()
            dxy = (got[..., :2] - expected[..., :2]).abs().max().item()
            wrong = int((got[..., 2] != expected[..., 2]).sum())
            print(
                f"{name:<10} {device:<6} {b:>3} {k:>3} {h:>4} {w:>4} {seconds * 1e3:>9.3f} "
                f"{b * k / seconds:>12,.0f} {moved / seconds / 1e9:>8.2f} {dxy:>10.2e} {wrong:>8}"
            )
    if not cuda:
        print("No CUDA device: the Triton kernel was not measured (its tests ran through TRITON_INTERPRET=1).")


def gaussians(centres: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """One Gaussian per map sampled at cell centres: centres (N, 2) as (x, y) → (N, 1, H, W) float32."""
    ys = torch.arange(height, dtype=torch.float64).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float64).view(1, 1, width)
    cx, cy = centres[:, 0].view(-1, 1, 1), centres[:, 1].view(-1, 1, 1)
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).unsqueeze(1).float()


def patch_mean(maps: torch.Tensor) -> torch.Tensor:
    """Alternative refinement for comparison: value-weighted mean of the 3x3 patch at the argmax, (N, 2) as (x, y)."""
    n, _, h, w = maps.shape
    index = maps.reshape(n, h * w).argmax(dim=-1)
    row, col = index // w, index % w
    padded = nn.functional.pad(maps[:, 0], (1, 1, 1, 1))  # (N, H+2, W+2), zero outside
    patch = torch.stack([padded[i, row[i] : row[i] + 3, col[i] : col[i] + 3] for i in range(n)]).clamp_min(0)
    offsets = torch.tensor([-1.0, 0.0, 1.0])
    total = patch.sum(dim=(1, 2))
    dx = (patch.sum(dim=1) * offsets).sum(dim=-1) / total
    dy = (patch.sum(dim=2) * offsets).sum(dim=-1) / total
    return torch.stack([col + dx, row + dy], dim=-1)


def accuracy(n: int) -> None:
    """Print median Euclidean error (map cells) of argmax, 3x3 weighted mean and the log-quadratic fit."""
    h, w = 48, 64
    g = torch.Generator().manual_seed(0)
    centres = torch.stack(
        [4 + torch.rand(n, generator=g, dtype=torch.float64) * (w - 9), 4 + torch.rand(n, generator=g) * (h - 9)], -1
    )
    print(f"median (90th percentile) error in map cells over {n} maps {h}x{w}; noise: uniform(0, level) added")
    print(f"{'sigma':>5} {'noise':>6} {'argmax':>15} {'3x3 mean':>15} {'log-quadratic':>15} {'multi (k=1)':>15}")
    for sigma in (1.0, 2.0, 3.0):
        clean = gaussians(centres, h, w, sigma)
        for level in (0.0, 0.01, 0.05, 0.1):
            maps = clean + level * torch.rand(clean.shape, generator=g)
            index = maps.reshape(n, -1).argmax(dim=-1)
            results = [
                torch.stack([index % w, index // w], dim=-1).double(),
                patch_mean(maps).double(),
                find_peaks_reference(maps)[:, 0, :2].double(),
                find_peaks_multi(maps, 1, threshold=0.0)[:, 0, 0, :2].double(),
            ]
            cells = []
            for xy in results:
                error = (xy - centres.double()).norm(dim=-1)
                cells.append(f"{error.median():.4f} ({error.quantile(0.9):.3f})")
            print(f"{sigma:>5} {level:>6} " + " ".join(f"{c:>15}" for c in cells))


class SmallNet(nn.Module):
    """A small LEAP-like encoder-decoder: (B, 1, 4H, 4W) frames → (B, K, H, W) maps at stride 4."""

    def __init__(self, n_keypoints: int) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1))

        self.net = nn.Sequential(
            block(1, 16), nn.MaxPool2d(2), block(16, 32), nn.MaxPool2d(2), block(32, 64), nn.Conv2d(64, n_keypoints, 1)
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Confidence maps (B, K, H, W) for frames (B, 1, 4H, 4W)."""
        return self.net(frames)


def model(repeats: int) -> None:
    """Print peak finding time as a share of a small model's CPU forward time per batch."""
    print(f"{'B':>3} {'K':>3} {'map':>8} {'forward ms':>11} {'peaks ms':>9} {'share':>7}")
    with torch.inference_mode():
        for b, k, h, w in [(8, 6, 32, 40), (8, 17, 64, 64), (8, 17, 120, 160)]:
            net = SmallNet(k).eval()
            frames = torch.rand(b, 1, 4 * h, 4 * w)
            maps = net(frames)
            forward = median_seconds(lambda net=net, frames=frames: net(frames), max(3, repeats // 4), False)
            peaks = median_seconds(lambda maps=maps: find_peaks_reference(maps), repeats, False)
            print(f"{b:>3} {k:>3} {h:>3}x{w:<4} {forward * 1e3:>11.2f} {peaks * 1e3:>9.3f} {peaks / forward:>7.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median reported)")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="map dtype for speed")
    parser.add_argument("--accuracy", action="store_true", help="print the accuracy table instead of speed")
    parser.add_argument("--maps", type=int, default=500, help="generated maps per accuracy row")
    parser.add_argument("--model", action="store_true", help="print peak finding against a small model's forward")
    args = parser.parse_args()
    if args.accuracy:
        accuracy(args.maps)
    elif args.model:
        model(args.repeats)
    else:
        speed(args.repeats, getattr(torch, args.dtype))


if __name__ == "__main__":
    main()
