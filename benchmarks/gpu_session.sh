#!/usr/bin/env bash
# The GPU checks of one session, in one call of about ten minutes (a lent GPU machine's time is
# short: see benchmarks/RESULTS.md, "GPU"). Run from the repository root on a CUDA machine whose
# python3 has torch, triton and pytorch-lightning:
#
#     DATA=../shared/data MINUTES=3 bash benchmarks/gpu_session.sh
#
# On the device machine ../shared does not travel: copy the two datasets' label files and frames
# into an ignored folder of the checkout, carry it, and point DATA there; ffmpeg-python (and its
# dependency future) travel as wheels. The first try, 2026-12-04, ran the predictor on the CPU
# and spent the session's GPU time there: check a step's device in its first line of output.
#
# 0. first, every test marked `gpu` (pytest -m gpu over tests/, about a minute): each asserts which
#    implementation ran (the Triton kernel compiled for the GPU, the model on CUDA, bfloat16 and
#    compiled as the workflow runs it there) and compares with the CPU path; the list of what
#    passed, failed or skipped is printed at once. The inference-job test reads videos: it needs
#    ffmpeg and ffprobe on PATH there (the first lines say whether they are), or it errors;
#    modules that cannot be imported there (sleap-io, pynwb, ...) are reported and left out.
# 1. peaks.py: the Triton kernel compiled, timed and checked against the reference (float32, float16);
# 2. inference.py --random-frames: predict (bfloat16 forward and peaks) eager and compiled;
# 3. accuracy.py: the default model on both datasets for MINUTES each, the two runs side by side
#    on the one GPU, while tests/ops runs the kernel tests compiled on the GPU.
# Logs go to $OUT (default results/gpu), one file per step; the summary is printed last.
set -u
out=${OUT:-results/gpu}
data=${DATA:-../shared/data}
minutes=${MINUTES:-3}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

step() { # name seconds command...: run one step under a time limit, its output in $out/name.log
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $? ($(date +%T))"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
$py -c "import torch, triton, pytorch_lightning as pl; print('torch', torch.__version__, 'triton', triton.__version__, 'lightning', pl.__version__)"
nproc
echo "ffmpeg: $(command -v ffmpeg || echo missing), ffprobe: $(command -v ffprobe || echo missing)"
date +%T
step gpu-tests 240 $py -m pytest -m gpu -v -rA -p no:cacheprovider --continue-on-collection-errors tests
grep -E "::.* (PASSED|FAILED|ERROR|SKIPPED)|^(FAILED|ERROR) |[0-9]+ (passed|failed|errors?|skipped)" "$out/gpu-tests.log"
{
    $py benchmarks/peaks.py --repeats 50
    $py benchmarks/peaks.py --repeats 50 --dtype float16
} >"$out/peaks.log" 2>&1
echo "peaks: exit $? ($(date +%T))"
{
    for compile in never always; do
        for batch in 8 32; do
            timeout 90 $py benchmarks/inference.py --random-frames 480x640 --batch-size $batch --compile $compile \
                --frames $((batch * 64)) --repeats 3
        done
    done
} >"$out/predict.log" 2>&1
echo "predict: exit $? ($(date +%T))"

acc=$(mktemp -d)
for dataset in dlc-openfield lp-mirror-mouse; do
    step "$dataset" 600 $py benchmarks/accuracy.py --models default --datasets $dataset --data "$data" \
        --accelerator gpu --minutes "$minutes" --epochs 100000 --out "$acc" &
done
step ops 400 $py -m pytest -q -p no:cacheprovider tests/ops
wait
for dataset in dlc-openfield lp-mirror-mouse; do
    cp "$acc/$dataset/default/logs/metrics.csv" "$out/$dataset-metrics.csv" 2>/dev/null
done

echo "---- summary"
grep -E "::.* (PASSED|FAILED|ERROR|SKIPPED)" "$out/gpu-tests.log" | sed 's/^/gpu-tests: /'
grep -v "^torch\|^GPU" "$out/peaks.log" | grep -i "triton\|reference  cuda\|error\|Traceback" | head -24
grep "predict on\|Error" "$out/predict.log"
tail -3 "$out/ops.log"
for dataset in dlc-openfield lp-mirror-mouse; do
    grep -A22 "^$dataset / default" "$out/$dataset.log" | tr '\r' '\n' | grep -v "Epoch\|it/s" | head -24
    grep -i "error\|Traceback" "$out/$dataset.log" | tail -3
done
