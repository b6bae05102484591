#!/usr/bin/env bash
# Mutation testing with mutmut 3 (`make mutation`; not in CI: hours on two cores), one module at
# a time, over the fast tests that cover the modules a wrong number would come from. The
# modules and tests are pyproject.toml's [tool.mutmut]; mutants and logs go to mutants/
# (ignored). Each module ends with its score: the mutants the tests killed (or that ran into
# the timeout) out of those checked, and the survivors by name (`mutmut show NAME` prints one).
#
#     bash benchmarks/mutation.sh                          # every module, in the order below
#     bash benchmarks/mutation.sh posecore.ops.peaks       # one module
#     bash benchmarks/mutation.sh posecore.io.video:_bounds,VideoInfo.time_of   # some functions of one
#     JOBS=1 bash benchmarks/mutation.sh posecore.evaluate
#
# posecore.io.video runs over the functions that decide which frame is which and when (probe's
# frame count, rate and keyframes, the time of a frame, the seek point, the select filter's
# windows, the frames and batches a read returns): 612 mutants, about 20 min here, most killed in
# milliseconds by the tests that need no decoding. The rest of its 1,155 are the ffmpeg process
# plumbing, whose failures the decode tests see as errors anyway (hours here). mutmut does not
# mutate decorated functions (VideoInfo._timestamp_array, a cached_property: 0 mutants).
#
# The first run collects which tests cover which function (all the tests above, a few minutes);
# later runs reuse it until a test file changes, and skip mutants already checked (delete
# mutants/ to start over). ../shared/data (POSECORE_TEST_DATA) makes the real-data tests run.
set -euo pipefail -f  # -f: the mutant patterns below are mutmut's globs, not the shell's
cd "$(dirname "$0")/.."
mutmut=${MUTMUT:-$(dirname "${PYTHON:-.venv/bin/python}")/mutmut}
export POSECORE_TEST_DATA=${POSECORE_TEST_DATA:-$(cd .. && pwd)/shared/data}
export CI=  # a skip is not a failure here: the mutants of a module see only the tests that reach it
unset PYTHONPATH  # mutmut puts mutants/ first on the path itself
modules=("$@")
video_functions=_rate,_index,_times,_bounds,_check_range,_seek_point,read_frame_array,read_frames,decode_into
video_functions+=,VideoInfo.time_of,VideoInfo.times_of,VideoInfo._timestamp_array,_Pass.__init__,_Pass._expression
video_functions+=,_Pass._selected
if [ ${#modules[@]} -eq 0 ]; then
    modules=(posecore.ops.peaks posecore.infer.plan posecore.evaluate posecore.io.trajectories posecore.io.exports
        posecore.io.labels posecore.io.coco_labels posecore.io.sleap_labels "posecore.io.video:$video_functions")
fi
mkdir -p mutants
for spec in "${modules[@]}"; do
    module=${spec%%:*}
    # mutmut names a function's mutants module.x_function__mutmut_N, a method's module.xǁClassǁmethod__mutmut_N
    patterns=$(python3 -c '
import sys
module, _, functions = sys.argv[1].partition(":")
names = functions.split(",") if functions else ["*"]
print(" ".join(f"{module}.x" + ("ǁ" + n.replace(".", "ǁ") if "." in n else n if n == "*" else "_" + n) + "__mutmut_*"
               for n in names))' "$spec")
    start=$(date +%s)
    # shellcheck disable=SC2086  # one argument per pattern
    nice -n 10 "$mutmut" run --max-children "${JOBS:-2}" $patterns >"mutants/$module.log" 2>&1 || {
        echo "$module: mutmut failed, see mutants/$module.log" >&2
        tail -20 "mutants/$module.log" >&2
        exit 1
    }
    seconds=$(($(date +%s) - start))
    "$mutmut" results --all true 2>/dev/null | python3 -c '
import collections, fnmatch, sys
spec, seconds, patterns = sys.argv[1], sys.argv[2], sys.argv[3].split()
status = {}
for line in sys.stdin:
    name, _, result = line.strip().rpartition(": ")
    if any(fnmatch.fnmatchcase(name, p) for p in patterns):
        status[name] = result
counts = collections.Counter(status.values())
checked = sum(n for s, n in counts.items() if s != "not checked")
killed = counts["killed"] + counts["timeout"]
score = 100 * killed / checked if checked else 0.0
print(f"{spec}: {killed} of {checked} mutants killed ({score:.1f}%), {seconds} s;",
      ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
for name, result in sorted(status.items()):
    if result not in ("killed", "timeout"):
        print(f"    {result}: {name}")
' "$spec" "$seconds" "$patterns"
done
