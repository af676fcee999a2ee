#!/usr/bin/env bash
# CPU time of `fargate-doctor watch` following a happy rollout on the ECS double
# (4 polls at the real 5 s interval, about 15 s of wall time), measured with GNU time.
#
#   crates/fargate-doctor/bench/watch-cpu.sh [--fast]
#
# --fast uses --poll-interval 20ms (same calls, no waiting) for a quick check.
# Budget: < 1 s of the watcher's own CPU (user + system).
# Knobs: CARGO_TARGET_DIR (cargo's), SCENARIO (default happy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
POLL=()
[[ "${1:-}" == "--fast" ]] && POLL=(--poll-interval 20ms)

cargo build -q --release -p fargate-doctor
cargo build -q -p testkit --bin ecs-double
WORK="$(mktemp -d)"
DOUBLE_PID=""
cleanup() { [[ -n "$DOUBLE_PID" ]] && kill "$DOUBLE_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$TARGET_DIR/debug/ecs-double" --scenario "${SCENARIO:-happy}" >"$WORK/double.out" &
DOUBLE_PID=$!
for _ in $(seq 1 50); do grep -q '^listening ' "$WORK/double.out" 2>/dev/null && break; sleep 0.1; done
URL="$(awk '/^listening / {print $2}' "$WORK/double.out")"
[[ -n "$URL" ]] || { echo "ecs-double did not start" >&2; exit 1; }

rc=0
env -i PATH="$PATH" AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_REGION=eu-west-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  /usr/bin/time -v -o "$WORK/time" "$TARGET_DIR/release/fargate-doctor" watch \
  --cluster prod --service web --endpoint-url "$URL" "${POLL[@]}" || rc=$?
grep -E 'User time|System time|Elapsed|Maximum resident' "$WORK/time"
awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "own CPU: %.2f s (budget 1 s)\n", u+s; exit !(u+s < 1)}' "$WORK/time"
exit "$rc"
