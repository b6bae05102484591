import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from posecore.ops import find_peaks
from posecore.ops.peaks import find_peaks_reference

from .conftest import KERNEL_DEVICE, OLD_INTERPRETER, interpreter_runs_the_kernel

REPO = Path(__file__).resolve().parents[2]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def assert_same_peaks(kernel: torch.Tensor, reference: torch.Tensor) -> None:
    """Same integer peak, subpixel offsets equal to float32 rounding, scores identical."""
    assert kernel.shape == reference.shape and kernel.dtype == torch.float32
    torch.testing.assert_close(kernel[..., :2], reference[..., :2], rtol=0, atol=1e-4, equal_nan=True)
    torch.testing.assert_close(kernel[..., 2], reference[..., 2], rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", [None, 8, 32])
def test_kernel_matches_reference_on_awkward_maps(triton_kernel, awkward_maps, dtype, block):
    maps = awkward_maps.to(dtype)  # (4, 6, 7, 13): NaN, flat, corners, borders, ties, inf
    assert_same_peaks(triton_kernel(maps, block=block), find_peaks_reference(maps))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 2, 1, 17), (2, 1, 19, 1), (3, 5, 3, 3), (1, 3, 33, 65)])
def test_kernel_matches_reference_on_sizes_that_are_not_powers_of_two(triton_kernel, shape):
    maps = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
    assert_same_peaks(triton_kernel(maps), find_peaks_reference(maps))
    assert_same_peaks(triton_kernel(maps, block=16), find_peaks_reference(maps))


def test_kernel_on_full_size_maps_with_ties_across_chunks(triton_kernel, make_gaussians, random_centres):
    maps = make_gaussians(random_centres(4, 120, 160, margin=0.0), 120, 160, 2.0).view(2, 2, 120, 160)
    maps[1, 1] = 0.1
    maps[1, 1, 100, 150] = 0.9  # in a later chunk than the tie below
    maps[1, 1, 119, 159] = 0.9  # last value of a partial chunk
    maps[1, 1, 30, 7] = 0.9  # the first of three equal maxima, two chunks earlier
    peaks = triton_kernel(maps)  # 19200 values: ten chunks of 2048, the last partial
    assert_same_peaks(peaks, find_peaks_reference(maps))
    assert peaks[1, 1].tolist()[:2] == [7.0, 30.0]


def test_find_peaks_asked_for_triton_runs_the_kernel(triton_kernel, make_gaussians, random_centres, peak_finder_calls):
    maps = make_gaussians(random_centres(6, 20, 30, margin=0.0, seed=3), 20, 30, 2.0).view(2, 3, 20, 30)
    reference = find_peaks_reference(maps)
    peak_finder_calls.clear()
    assert_same_peaks(find_peaks(maps.to(KERNEL_DEVICE), impl="triton").cpu(), reference)
    assert peak_finder_calls == [("triton", KERNEL_DEVICE)]  # the interpreter on the CPU, compiled on a GPU


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_on_a_gpu_find_peaks_sends_cuda_tensors_to_the_kernel_and_cpu_tensors_to_the_reference(
    make_gaussians, random_centres, awkward_maps, peak_finder_calls, dtype
):
    assert os.environ.get("TRITON_INTERPRET") != "1", "the kernel compiled for the GPU, not interpreted"
    centres = random_centres(6, 120, 160, margin=0.0, seed=3)
    for maps in (make_gaussians(centres, 120, 160, 2.0).view(2, 3, 120, 160).to(dtype), awkward_maps.to(dtype)):
        peak_finder_calls.clear()
        on_cpu = find_peaks(maps)  # "auto" on a CPU tensor
        on_gpu = find_peaks(maps.cuda())  # "auto" on a CUDA tensor
        assert peak_finder_calls == [("reference", "cpu"), ("triton", "cuda")]
        assert on_gpu.is_cuda and on_gpu.dtype == torch.float32
        assert_same_peaks(on_gpu.cpu(), on_cpu)


def test_cpu_tensor_without_interpreter_is_refused(triton_kernel, monkeypatch):
    from posecore.ops.peaks_triton import find_peaks_triton

    with pytest.raises(ValueError, match="power of two"):
        triton_kernel(torch.rand(1, 1, 4, 4), block=12)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="CUDA tensor"):
        find_peaks_triton(torch.rand(1, 1, 4, 4))


def test_interpreter_works_when_triton_and_the_kernel_were_imported_first(triton_kernel):
    if not interpreter_runs_the_kernel():
        pytest.skip(OLD_INTERPRETER)
    code = (
        "import os, torch, triton, posecore.ops.peaks_triton as pt\n"
        "os.environ['TRITON_INTERPRET'] = '1'\n"
        "m = torch.rand(2, 3, 9, 11)\n"
        "from posecore.ops.peaks import find_peaks_reference\n"
        "print(torch.allclose(pt.find_peaks_triton(m), find_peaks_reference(m), atol=1e-4))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


COMPILE = """
import re, sys, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import posecore.ops.peaks_triton as pt
for dtype in ("*fp32", "*fp16"):
    names = ["maps_ptr", "out_ptr", "size", "width", "BLOCK", "LOG_FLOOR"]
    types = [dtype, "*fp32", "i32", "i32", "constexpr", "constexpr"]
    aligned = {(i,): [["tt.divisibility", 16]] for i in range(3)}
    src = ASTSource(fn=pt._kernel(), signature=dict(zip(names, types)), constexprs={"BLOCK": 2048, "LOG_FLOOR": 1e-10},
                    attrs=aligned)
    ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 8}).asm["ptx"]
    print(dtype, "ld.global.v4" in ptx)
"""


def test_kernel_compiles_for_a_gpu_with_vectorised_loads(triton_kernel):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compiling needs a non-interpreted triton
    out = subprocess.run([sys.executable, "-c", COMPILE], cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0 and ("ModuleNotFoundError" in out.stderr or "ImportError" in out.stderr):
        pytest.skip(f"this Triton cannot compile ahead of time here: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["*fp32", "True", "*fp16", "True"]
