#!/usr/bin/env bash
# Compares fargate-doctor with cfn-lint on the trap fixtures:
#   which trap each tool reports, and wall time.
#
# Usage: crates/fargate-doctor/bench/compare.sh [--smoke]
#   --smoke  one quick run per tool on one fixture; checks the script works (CI).
#
# Reference tool: cfn-lint, pinned to 1.51.0 (pip install cfn-lint==1.51.0);
# installed with pip when missing. Timing uses hyperfine when installed
# (apt-get install -y hyperfine), else a loop with date +%s%N.
# Environment: CARGO_TARGET_DIR (default <repo>/target), RUNS (default 10).
set -euo pipefail

CFN_LINT_VERSION=1.51.0
HERE="$(cd "$(dirname "$0")" && pwd)"
CRATE="$(dirname "$HERE")"
REPO="$(cd "$CRATE/../.." && pwd)"
FIXTURES="$CRATE/tests/fixtures/rules"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$TARGET/release/fargate-doctor"
RUNS="${RUNS:-10}"
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

log() { printf '%s\n' "$*" >&2; }

(cd "$REPO" && cargo build --release -q -p fargate-doctor)
[[ -x "$BIN" ]] || { log "no binary at $BIN"; exit 1; }

HAVE_CFN=1
if ! command -v cfn-lint >/dev/null 2>&1; then
  log "cfn-lint missing; installing cfn-lint==$CFN_LINT_VERSION with pip"
  python3 -m pip install -q "cfn-lint==$CFN_LINT_VERSION" >&2 || HAVE_CFN=0
fi
command -v cfn-lint >/dev/null 2>&1 || HAVE_CFN=0
if [[ $HAVE_CFN == 1 ]]; then
  got="$(cfn-lint --version 2>&1 | awk '{print $2}')"
  [[ "$got" == "$CFN_LINT_VERSION" ]] || log "note: cfn-lint $got installed (pinned: $CFN_LINT_VERSION)"
fi

# Codes a tool reports for one file, space-separated and sorted.
doctor_codes() {
  "$BIN" lint --format json --fail-on never "$1" |
    python3 -c 'import json,sys; print(" ".join(sorted({f["code"] for f in json.load(sys.stdin)["findings"]})))'
}
cfn_codes() {
  { cfn-lint --format json -- "$1" || true; } |
    python3 -c 'import json,sys
t=sys.stdin.read().strip() or "[]"
print(" ".join(sorted({m["Rule"]["Id"] for m in json.loads(t)})))'
}

if [[ $SMOKE == 1 ]]; then
  f="$FIXTURES/FD203-fail.yaml"
  codes="$(doctor_codes "$f")"
  [[ " $codes " == *" FD203 "* ]] || { log "smoke: fargate-doctor did not report FD203 (got: $codes)"; exit 1; }
  if [[ $HAVE_CFN == 1 ]]; then
    cfn="$(cfn_codes "$f")"
    log "smoke: cfn-lint reports: ${cfn:-nothing}"
  else
    log "smoke: cfn-lint unavailable; skipped its side"
  fi
  log "smoke: ok (fargate-doctor reports $codes)"
  exit 0
fi

[[ $HAVE_CFN == 1 ]] || { log "cfn-lint is required for the full comparison"; exit 1; }

# cfn-lint rules that catch the same trap (from its rule docs and the fixtures).
declare -A CFN_EQUIV=([FD201]="E3048" [FD202]="E3053" [FD401]="E3047")

echo "## Findings on the trap fixtures (crates/fargate-doctor/tests/fixtures/rules/*-fail.yaml)"
echo
echo "| fixture | trap | fargate-doctor reports | trap found | cfn-lint reports | trap found by cfn-lint |"
echo "|---|---|---|---|---|---|"
total=0; ours=0; theirs=0
for f in "$FIXTURES"/*-fail.yaml; do
  name="$(basename "$f")"
  trap="${name%%-*}"
  d="$(doctor_codes "$f")"
  c="$(cfn_codes "$f")"
  total=$((total + 1))
  found=no; [[ " $d " == *" $trap "* ]] && { found=yes; ours=$((ours + 1)); }
  cfound=no
  for e in ${CFN_EQUIV[$trap]:-}; do [[ " $c " == *" $e "* ]] && cfound="yes ($e)"; done
  [[ $cfound != no ]] && theirs=$((theirs + 1))
  echo "| $name | $trap | ${d:-—} | $found | ${c:-—} | $cfound |"
done
echo
echo "fargate-doctor found $ours of $total traps; cfn-lint found $theirs."
echo

# A directory of 100 templates: the rule fixtures (trap and fixed) and the
# corpus (Copilot, CDK, conditions, ...), cycled to 100 files.
DIR100="$(mktemp -d)"
trap 'rm -rf "$DIR100"' EXIT
mapfile -t pool < <(find "$FIXTURES" "$CRATE/tests/corpus" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.template.json' \) | sort)
i=0
while (( i < 100 )); do
  src="${pool[$((i % ${#pool[@]}))]}"
  base="$(basename "$src")"
  cp "$src" "$DIR100/$(printf '%03d' "$i")-${base}"
  i=$((i + 1))
done

all100=("$DIR100"/*)
files=("$FIXTURES"/*-fail.yaml)
one="$FIXTURES/FD101-fail.yaml"
echo "## Wall time"
echo
if command -v hyperfine >/dev/null 2>&1; then
  md="$(mktemp)"
  hyperfine -N --warmup 2 --runs "$RUNS" --export-markdown "$md" \
    -n "cfn-lint, ${#files[@]} files" "cfn-lint ${files[*]}" \
    -n "fargate-doctor, ${#files[@]} files" "$BIN lint --fail-on never ${files[*]}" \
    -n "cfn-lint, directory of 100 templates" "cfn-lint -- ${all100[*]}" \
    -n "fargate-doctor, directory of 100 templates" "$BIN lint --fail-on never $DIR100" \
    -n "cfn-lint, 1 file" "cfn-lint $one" \
    -n "fargate-doctor, 1 file" "$BIN lint --fail-on never $one" \
    -i >&2
  cat "$md"
  rm -f "$md"
else
  t() { local s e; s=$(date +%s%N); for _ in $(seq "$RUNS"); do "$@" >/dev/null 2>&1 || true; done; e=$(date +%s%N); echo "$(( (e - s) / RUNS / 1000000 )) ms"; }
  echo "| command | mean |"
  echo "|---|---|"
  echo "| cfn-lint, ${#files[@]} files | $(t cfn-lint "${files[@]}") |"
  echo "| fargate-doctor, ${#files[@]} files | $(t "$BIN" lint --fail-on never "${files[@]}") |"
  echo "| cfn-lint, directory of 100 templates | $(t cfn-lint -- "${all100[@]}") |"
  echo "| fargate-doctor, directory of 100 templates | $(t "$BIN" lint --fail-on never "$DIR100") |"
  echo "| cfn-lint, 1 file | $(t cfn-lint "$one") |"
  echo "| fargate-doctor, 1 file | $(t "$BIN" lint --fail-on never "$one") |"
fi
