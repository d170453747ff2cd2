#!/usr/bin/env bash
# CI: `cargo xtask sweep` on a real single-node Slurm cluster (scripts/slurm-local.sh).
#  1. a 4-task array of the cheap `smoluchowski` experiment over 4 seeds: submit, wait, collect,
#     and require all 4 results in the table;
#  2. a 2-task ring2d array (same seed twice, short training, checkpoints every 100 steps): task 1
#     is scancel'ed as soon as its first checkpoint exists, `--resubmit-failed` resubmits only it, it resumes
#     from the checkpoint, and its samples.npy must equal task 0's (uninterrupted) byte for byte.
# The cluster's daemons are stopped by PID at the end (also on failure).
#
#   .ci/slurm-sweep.sh            # work dir: a fresh temp dir (or $SWEEP_CI_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${SWEEP_CI_DIR:-$(mktemp -d /tmp/smoluchowski-sweep-ci.XXXXXX)}"
rm -rf "$WORK/cheap" "$WORK/resume"
mkdir -p "$WORK"
echo "slurm-sweep: work dir $WORK"

cargo build --release --quiet -p xtask
X="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/xtask"
test -x "$X" || { echo "slurm-sweep: no xtask binary at $X" >&2; exit 1; }

scripts/slurm-local.sh start
trap 'scripts/slurm-local.sh stop' EXIT
eval "$(scripts/slurm-local.sh env)"

fail() { echo "slurm-sweep: FAILED: $*" >&2; exit 1; }

# wait_job JOB TIMEOUT_S: until no element of JOB is queued or running.
wait_job() {
  local job="$1" limit="$2" t=0
  while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do
    [ "$t" -lt "$limit" ] || { scancel "$job" || true; fail "job $job still running after $limit s"; }
    sleep 2
    t=$((t + 2))
  done
}

# 1. Four seeds of a cheap experiment.
start=$(date +%s)
"$X" sweep expand experiments/smoluchowski-seeds.sweep.toml --out "$WORK/cheap"
job=$("$X" sweep submit "$WORK/cheap" --slurm --concurrency 2 --time 00:10:00 | tail -n 1)
echo "slurm-sweep: submitted 4-task array $job"
wait_job "$job" 600
echo "slurm-sweep: 4-task array done in $(($(date +%s) - start)) s"
"$X" sweep collect "$WORK/cheap" --plot ou.var_t_end --against experiment.seed | tee "$WORK/cheap.collect.txt"
grep -q "4/4 task(s) complete, 4/4 passed their golden checks" "$WORK/cheap.collect.txt" \
  || fail "not every task of the 4-task array has a result that passes its golden checks (seed pins left out)"
grep -q '^# --mem estimated from the manifests: largest task' "$WORK/cheap/slurm/array.sbatch" \
  || fail "array.sbatch has no --mem estimated from the manifests"
for i in 0 1 2 3; do
  test -s "$WORK/cheap/runs/$i/metrics.json" || fail "task $i: no metrics.json"
done
[ "$(grep -c '^[0-3],smoluchowski-[0-3],' "$WORK/cheap/table.csv")" -eq 4 ] || fail "table.csv lacks rows"
if grep -q ',missing,' "$WORK/cheap/table.csv"; then fail "table.csv has missing tasks"; fi

# 2. scancel one task mid-run, resubmit the failed ones, check the resumed result.
start=$(date +%s)
"$X" sweep expand .ci/ring2d-resume.sweep.toml --out "$WORK/resume"
job=$("$X" sweep submit "$WORK/resume" --slurm --cpus 1 --concurrency 2 --time 00:40:00 | tail -n 1)
echo "slurm-sweep: submitted 2-task ring2d array $job"
ckpt="$WORK/resume/runs/1.checkpoints/trainer.safetensors"
# Poll every 0.1 s and cancel as soon as the first checkpoint (step 100 of 1500, renamed into place
# whole) exists: the remaining 93 % of the training and all the sampling (about 12 s here) leave a
# wide margin even on a much faster machine; if the task still finished first, the check below
# fails loudly rather than passing without a resume.
t0=$(date +%s)
until [ -s "$ckpt" ]; do
  [ $(($(date +%s) - t0)) -lt 900 ] || fail "task 1 wrote no checkpoint in 900 s"
  [ -n "$(squeue -h -j "${job}_1" 2>/dev/null)" ] || fail "task 1 ended before its first checkpoint"
  sleep 0.1
done
scancel "${job}_1"
echo "slurm-sweep: scancel ${job}_1 $(($(date +%s) - t0)) s after submission (checkpoint $(ls -l "$ckpt" | awk '{print $5}') bytes)"
wait_job "$job" 1800
test ! -e "$WORK/resume/runs/1/metrics.json" || fail "task 1 finished although it was cancelled"
"$X" sweep collect "$WORK/resume" | tee "$WORK/resume.collect1.txt"
grep -q "MISSING or FAILED (1): \[1\]" "$WORK/resume.collect1.txt" || fail "collect did not list task 1 as missing"
job2=$("$X" sweep submit "$WORK/resume" --slurm --cpus 1 --concurrency 2 --time 00:40:00 --resubmit-failed | tail -n 1)
grep -qx '#SBATCH --array=1%2' "$WORK/resume/slurm/resubmit.sbatch" || fail "resubmit script is not --array=1%2"
echo "slurm-sweep: resubmitted task 1 as job $job2"
wait_job "$job2" 1800
echo "slurm-sweep: ring2d array incl. resubmission done in $(($(date +%s) - start)) s"
grep -q "resuming training from step" "$WORK/resume/logs/1.log" || fail "task 1 did not resume from its checkpoint"
"$X" sweep collect "$WORK/resume" | tee "$WORK/resume.collect2.txt"
grep -q "2/2 task(s) complete" "$WORK/resume.collect2.txt" || fail "task 1 has no result after resubmission"
a=$(sha256sum "$WORK/resume/runs/0/samples.npy" | cut -d' ' -f1)
b=$(sha256sum "$WORK/resume/runs/1/samples.npy" | cut -d' ' -f1)
echo "slurm-sweep: samples.npy sha256 uninterrupted $a, resumed $b"
[ "$a" = "$b" ] || fail "the resumed run's samples.npy differs from the uninterrupted run's"
echo "slurm-sweep: OK"
