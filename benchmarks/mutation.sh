#!/usr/bin/env bash
# Mutation testing with mutmut 3 (`make mutation`; not in CI: hours on two cores), one module at
# a time, over the fast tests that cover the modules a wrong number would come from. The
# modules and tests are pyproject.toml's [tool.mutmut]; mutants and logs go to mutants/
# (ignored). Each module ends with its score: the mutants the tests killed (or that ran into
# the timeout) out of those checked, and the survivors by name (`mutmut show NAME` prints one).
#
#     bash benchmarks/mutation.sh                          # every module, in the order below
#     bash benchmarks/mutation.sh posecore.ops.peaks       # one module
#     JOBS=1 bash benchmarks/mutation.sh posecore.io.video
#
# The first run collects which tests cover which function (all the tests above, a few minutes);
# later runs reuse it until a test file changes, and skip mutants already checked (delete
# mutants/ to start over). ../shared/data (POSECORE_TEST_DATA) makes the real-data tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
mutmut=${MUTMUT:-$(dirname "${PYTHON:-.venv/bin/python}")/mutmut}
export POSECORE_TEST_DATA=${POSECORE_TEST_DATA:-$(cd .. && pwd)/shared/data}
export CI=  # a skip is not a failure here: the mutants of a module see only the tests that reach it
unset PYTHONPATH  # mutmut puts mutants/ first on the path itself
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(posecore.ops.peaks posecore.infer.plan posecore.evaluate posecore.io.trajectories posecore.io.exports
        posecore.io.labels posecore.io.coco_labels posecore.io.sleap_labels posecore.io.video)
fi
mkdir -p mutants
for module in "${modules[@]}"; do
    start=$(date +%s)
    nice -n 10 "$mutmut" run --max-children "${JOBS:-2}" "$module.*" >"mutants/$module.log" 2>&1 || {
        echo "$module: mutmut failed, see mutants/$module.log" >&2
        tail -20 "mutants/$module.log" >&2
        exit 1
    }
    seconds=$(($(date +%s) - start))
    "$mutmut" results --all true 2>/dev/null | python3 -c '
import collections, sys
module, seconds = sys.argv[1], sys.argv[2]
status = {}
for line in sys.stdin:
    name, _, result = line.strip().rpartition(": ")
    if name.startswith(module + ".x"):
        status[name] = result
counts = collections.Counter(status.values())
checked = sum(n for s, n in counts.items() if s != "not checked")
killed = counts["killed"] + counts["timeout"]
score = 100 * killed / checked if checked else 0.0
print(f"{module}: {killed} of {checked} mutants killed ({score:.1f}%), {seconds} s;",
      ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
for name, result in sorted(status.items()):
    if result not in ("killed", "timeout"):
        print(f"    {result}: {name}")
' "$module" "$seconds"
done
