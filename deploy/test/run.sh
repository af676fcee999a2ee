#!/usr/bin/env bash
# Offline proof of the Fargate deploy kit (no AWS, no registry images needed).
#
#   bash deploy/test/run.sh            # from the repository root (called by .ci/run)
#
# Steps
#   1  cfn-lint (pinned) on every template: no errors, no warnings, no infos;
#      the container name is one value from the task definition to the pipeline.
#   2  static release build of prpr (musl; glibc crt-static as a fallback), checked static.
#   3  the runtime stage of deploy/Dockerfile built from scratch with that binary;
#      compressed and uncompressed sizes printed; compressed must be <= 20 MB.
#   4  the image started with `buildah run --isolation chroot`: GET /healthz and
#      /readyz answer 200, the process runs as UID 65532, SIGTERM stops it cleanly.
#   5  deploy/scripts/build-and-push.sh against a local registry on 127.0.0.1:
#      imagedefinitions.json names the task definition's container and the pushed image.
#   6  fargate-doctor lint deploy/ (when the crate builds and has `lint`): zero findings.
#
# Knobs: CARGO_TARGET_DIR (cargo's), PRPR_BINARY (use this static binary, skip step 2's
# build), DEPLOY_TOOLS_DIR (where the cfn-lint venv lives, default ~/.cache/prpr-deploy),
# KEEP_TMP=1 (keep the work dir).
set -euo pipefail

CFN_LINT_VERSION=1.58.0
APP_UID=65532
MAX_COMPRESSED_BYTES=$((20 * 1000 * 1000))

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TOOLS_DIR="${DEPLOY_TOOLS_DIR:-${HOME:-/root}/.cache/prpr-deploy}"
WORK="$(mktemp -d /tmp/prpr-deploy-test.XXXXXX)"
TEST_IMAGE="localhost/prpr-deploy-test:$$"

passed=0 failed=0 skipped=0 step_name="" step_start=0
REGISTRY_PID="" SERVER_PID="" CTR=""
DANGLING_BEFORE=""

log() { printf '    %s\n' "$*"; }
fail() { printf '    FAIL: %s\n' "$*" >&2; exit 1; }

step() {
  step_name="$1"; step_start=$SECONDS
  printf '\n=== deploy test step %s ===\n' "$step_name"
}
step_ok() {
  passed=$((passed + 1))
  printf -- '--- ok: step %s (%ds)\n' "$step_name" $((SECONDS - step_start))
  step_name=""
}
step_skip() {
  skipped=$((skipped + 1))
  printf -- '--- SKIPPED: step %s: %s (%ds)\n' "$step_name" "$1" $((SECONDS - step_start))
  step_name=""
}

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$step_name" ]]; then
    failed=$((failed + 1))
    printf -- '--- FAILED: step %s (%ds)\n' "$step_name" $((SECONDS - step_start)) >&2
  fi
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null
  [[ -n "$CTR" ]] && buildah rm "$CTR" >/dev/null 2>&1
  [[ -n "$REGISTRY_PID" ]] && { kill "$REGISTRY_PID" 2>/dev/null; wait "$REGISTRY_PID" 2>/dev/null; }
  podman rmi -f "$TEST_IMAGE" >/dev/null 2>&1
  [[ -n "${PUSHED_URI:-}" ]] && podman rmi -f "$PUSHED_URI" >/dev/null 2>&1
  # intermediate images our builds left behind (only those that were not there before)
  for id in $(podman images -q --filter dangling=true 2>/dev/null); do
    [[ " $DANGLING_BEFORE " == *" $id "* ]] || podman rmi "$id" >/dev/null 2>&1
  done
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  printf '\ndeploy: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
  [[ $rc -eq 0 && $failed -gt 0 ]] && rc=1
  exit $rc
}
trap cleanup EXIT

mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1000000 }'; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ------------------------------------------------------------------ prerequisites
step "0: prerequisites"
apt_pkgs=()
for pair in podman:podman buildah:buildah skopeo:skopeo docker-registry:docker-registry \
            file:file curl:curl ss:iproute2 musl-gcc:musl-tools shellcheck:shellcheck; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || apt_pkgs+=("${pair#*:}")
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || apt_pkgs+=(ca-certificates)
if ((${#apt_pkgs[@]})); then
  log "installing with apt-get: ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi
DANGLING_BEFORE="$(podman images -q --filter dangling=true | tr '\n' ' ')"
CFN_VENV="$TOOLS_DIR/cfn-lint-$CFN_LINT_VERSION"
if [[ ! -x "$CFN_VENV/bin/cfn-lint" ]] || [[ "$("$CFN_VENV/bin/cfn-lint" --version 2>/dev/null)" != "cfn-lint $CFN_LINT_VERSION" ]]; then
  log "installing cfn-lint==$CFN_LINT_VERSION into $CFN_VENV"
  rm -rf "$CFN_VENV"
  python3 -m venv "$CFN_VENV"
  "$CFN_VENV/bin/pip" install -q --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi
CFN_LINT="$CFN_VENV/bin/cfn-lint"
PY="$CFN_VENV/bin/python" # has cfn-lint's template decoder (handles !Ref & co.)
log "$("$CFN_LINT" --version); $(podman --version); $(buildah --version | cut -d' ' -f1-3); $(skopeo --version)"
log "docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null || echo '?'); shellcheck $(shellcheck --version | awk '/^version:/ {print $2}')"
step_ok

# -------------------------------------------------------------------- 1. cfn-lint
step "1: cfn-lint $CFN_LINT_VERSION, shellcheck, container-name consistency"
templates=(deploy/cloudformation/*.yml)
((${#templates[@]})) || fail "no templates under deploy/cloudformation"
for t in "${templates[@]}"; do
  if out="$("$CFN_LINT" --format parseable -- "$t" 2>&1)"; then
    log "clean: $t"
  else
    printf '%s\n' "$out" >&2
    fail "cfn-lint reported findings in $t (errors, warnings or infos all fail this step)"
  fi
done
# The container name must be one parameter threaded through: task definition,
# service LoadBalancers, the stack export, and the pipeline's CONTAINER_NAME.
CONTAINER_NAME="$("$PY" - <<'PYEOF'
import sys
from cfnlint.decode import decode

def load(path):
    tpl, errs = decode(path)
    if errs or tpl is None:
        sys.exit(f"cannot parse {path}: {errs}")
    return tpl

svc = load("deploy/cloudformation/service.yml")
pipe = load("deploy/cloudformation/pipeline.yml")
params = svc.get("Parameters", {})

def resolve(v, what):
    if isinstance(v, dict) and list(v) == ["Ref"] and v["Ref"] in params:
        return v["Ref"], params[v["Ref"]].get("Default")
    sys.exit(f"{what} is {v!r}: expected a Ref to a template parameter (one value, no literal)")

tds = [r for r in svc["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
if len(tds) != 1:
    sys.exit(f"expected 1 task definition in service.yml, found {len(tds)}")
cds = tds[0]["Properties"]["ContainerDefinitions"]
if len(cds) != 1:
    sys.exit(f"expected 1 container, found {len(cds)}")
param, name = resolve(cds[0]["Name"], "task definition container Name")
for lid, r in svc["Resources"].items():
    if r["Type"] == "AWS::ECS::Service":
        for lb in r["Properties"].get("LoadBalancers", []):
            p, _ = resolve(lb["ContainerName"], f"{lid}.LoadBalancers.ContainerName")
            if p != param:
                sys.exit(f"{lid} load balancer uses {p}, task definition uses {param}")
            if lb["ContainerPort"] != 3000:
                sys.exit(f"{lid} load balancer port {lb['ContainerPort']} != 3000")
out = svc["Outputs"]["ContainerName"]
if out["Value"] != {"Ref": param} or out["Export"]["Name"] != {"Fn::Sub": "${AWS::StackName}-ContainerName"}:
    sys.exit("service.yml must export the container name parameter as ${AWS::StackName}-ContainerName")
env = None
for r in pipe["Resources"].values():
    if r["Type"] == "AWS::CodeBuild::Project":
        for e in r["Properties"]["Environment"]["EnvironmentVariables"]:
            if e["Name"] == "CONTAINER_NAME":
                env = e["Value"]
if env != {"Fn::ImportValue": {"Fn::Sub": "${ServiceStackName}-ContainerName"}}:
    sys.exit(f"pipeline.yml CodeBuild CONTAINER_NAME must import the service stack's export, is {env!r}")
for r in pipe["Resources"].values():
    if r["Type"] == "AWS::CodePipeline::Pipeline":
        acts = [a for s in r["Properties"]["Stages"] for a in s["Actions"]]
        ecs = [a for a in acts if a["ActionTypeId"]["Provider"] == "ECS"]
        if len(ecs) != 1 or ecs[0]["Configuration"].get("FileName") != "imagedefinitions.json":
            sys.exit("pipeline must have one ECS deploy action with FileName imagedefinitions.json")
        src = [a for a in acts if a["ActionTypeId"]["Category"] == "Source"]
        if any(a["ActionTypeId"]["Provider"] != "CodeStarSourceConnection" for a in src):
            sys.exit("source must be a CodeStarSourceConnection (not GitHub v1 OAuth)")
print(name)
PYEOF
)" || fail "container name is not one value across the templates"
log "container name '$CONTAINER_NAME' = task definition = service LB = export = pipeline CONTAINER_NAME"
grep -q '^ *- imagedefinitions.json$' deploy/buildspec.yml || fail "buildspec artifacts must list imagedefinitions.json"
shellcheck deploy/scripts/build-and-push.sh deploy/test/run.sh || fail "shellcheck findings in the deploy scripts"
log "shellcheck clean: deploy/scripts/build-and-push.sh deploy/test/run.sh"
step_ok

# ------------------------------------------------------- 2. static release binary
step "2: static release build of prpr"
if [[ -n "${PRPR_BINARY:-}" ]]; then
  BIN="$PRPR_BINARY"
  log "using PRPR_BINARY=$BIN (no build)"
else
  musl_ok=0
  if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    musl_ok=1
  elif rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1; then
    musl_ok=1
  fi
  if ((musl_ok)) && command -v musl-gcc >/dev/null; then
    log "target x86_64-unknown-linux-musl (musl resolver, no NSS)"
    CC_x86_64_unknown_linux_musl=musl-gcc \
      cargo build --release --locked --target x86_64-unknown-linux-musl -p prpr
    BIN="$TARGET_DIR/x86_64-unknown-linux-musl/release/prpr"
  else
    log "musl target not available here; FALLBACK glibc crt-static (test only: glibc's"
    log "static getaddrinfo needs NSS modules that scratch lacks, so DNS may fail)"
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target x86_64-unknown-linux-gnu -p prpr
    BIN="$TARGET_DIR/x86_64-unknown-linux-gnu/release/prpr"
  fi
fi
[[ -x "$BIN" ]] || fail "no binary at $BIN"
finfo="$(file -b "$BIN")"
log "file: $finfo"
[[ "$finfo" == *"statically linked"* || "$finfo" == *"static-pie linked"* ]] || fail "$BIN is not statically linked"
lddout="$(ldd "$BIN" 2>&1 || true)"
log "ldd: $lddout"
[[ "$lddout" != *"=>"* ]] || fail "ldd lists shared libraries"
log "binary size: $(stat -c %s "$BIN") bytes"
step_ok

# ------------------------------------------------------------ 3. runtime image
step "3: runtime image (deploy/Dockerfile, stage runtime, from scratch)"
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/etc/ssl/certs" "$ROOTFS/data" "$ROOTFS/tmp"
cp "$BIN" "$ROOTFS/prpr"
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$ROOTFS/tmp"
# --build-context rootfs=... replaces the Dockerfile's `rootfs` stage (the builder's output)
# with the binary built in step 2; everything else is the real runtime stage.
podman build -q --pull=never --build-context "rootfs=$ROOTFS" --target runtime \
  -f deploy/Dockerfile -t "$TEST_IMAGE" . >/dev/null
uncompressed="$(podman image inspect --format '{{.Size}}' "$TEST_IMAGE")"
podman save -q --format oci-archive -o "$WORK/image.tar" "$TEST_IMAGE"
compressed="$(gzip -c "$WORK/image.tar" | wc -c)"
log "image size: uncompressed $uncompressed bytes ($(mb "$uncompressed") MB), compressed (gzip of the saved image) $compressed bytes ($(mb "$compressed") MB); limit 20 MB compressed"
((compressed <= MAX_COMPRESSED_BYTES)) || fail "compressed image is larger than 20 MB"
cfg="$(podman image inspect --format '{{json .Config}}' "$TEST_IMAGE")"
"$PY" - "$cfg" "$APP_UID" <<'PYEOF' || fail "image config is not as specified"
import json, sys
c, uid = json.loads(sys.argv[1]), sys.argv[2]
want = {"User": f"{uid}:{uid}", "Entrypoint": ["/prpr", "serve"]}
for k, v in want.items():
    if c.get(k) != v:
        sys.exit(f"{k} is {c.get(k)!r}, want {v!r}")
if "3000/tcp" not in (c.get("ExposedPorts") or {}):
    sys.exit("EXPOSE 3000 missing")
env = dict(e.split("=", 1) for e in c.get("Env", []))
for k in ("DATABASE_URL", "SSL_CERT_FILE", "PORT"):
    if k not in env:
        sys.exit(f"ENV {k} missing")
print("    config: User", c["User"], "| Entrypoint", c["Entrypoint"], "| DATABASE_URL", env["DATABASE_URL"])
PYEOF
step_ok

# ------------------------------------------------------------ 4. run the image
step "4: start the image (buildah run --isolation chroot), /healthz, non-root, SIGTERM"
CTR="$(buildah from --pull=never "$TEST_IMAGE")"
entrypoint="$(podman image inspect --format '{{json .Config.Entrypoint}}' "$TEST_IMAGE")"
mapfile -t ep < <("$PY" -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$entrypoint")
PORT="$(free_port)"
log "running ${ep[*]} with PORT=$PORT"
buildah run --isolation chroot -e "PORT=$PORT" -e "GITHUB_WEBHOOK_SECRET=deploy-test-secret" \
  -e "LOG_FORMAT=json" "$CTR" -- "${ep[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
code="" deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz" || true)"
  [[ "$code" == 200 ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the container exited before /healthz answered"; }
  sleep 0.5
done
[[ "$code" == 200 ]] || { tail -20 "$WORK/server.log" >&2; fail "GET /healthz: got '$code' within 60 s, want 200"; }
log "GET /healthz -> 200 after $((SECONDS - step_start)) s"
code="" deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/readyz" || true)"
  [[ "$code" == 200 ]] && break
  sleep 0.5
done
[[ "$code" == 200 ]] || { tail -20 "$WORK/server.log" >&2; fail "GET /readyz: got '$code', want 200 (is /data writable by UID $APP_UID?)"; }
log "GET /readyz -> 200 (SQLite store in /data is writable by the non-root user)"
pid="$(ss -Hltnp "sport = :$PORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
[[ -n "$pid" ]] || fail "cannot find the process listening on $PORT"
uids="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
gids="$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
log "listener pid $pid ($(cat "/proc/$pid/comm")): Uid $uids, Gid $gids"
[[ "$uids" == "$APP_UID $APP_UID $APP_UID $APP_UID" ]] || fail "process runs as UID '$uids', want $APP_UID"
[[ "$gids" == "$APP_UID $APP_UID $APP_UID $APP_UID" ]] || fail "process runs as GID '$gids', want $APP_UID"
kill -TERM "$pid"
stop_start=$SECONDS deadline=$((SECONDS + 35))
while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "still running 35 s after SIGTERM (stopTimeout is 30 s)"
rc=0; wait "$SERVER_PID" || rc=$?
SERVER_PID=""
log "SIGTERM -> exited with $rc after $((SECONDS - stop_start)) s"
((rc == 0)) || { tail -20 "$WORK/server.log" >&2; fail "exit status $rc after SIGTERM, want 0"; }
log "server log (last lines):"; tail -3 "$WORK/server.log" | sed 's/^/      /'
buildah rm "$CTR" >/dev/null; CTR=""
step_ok

# ---------------------------------------------- 5. build-and-push + imagedefinitions
step "5: build-and-push.sh -> local registry, imagedefinitions.json"
REG_PORT="$(free_port)"
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$REG_PORT
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
deadline=$((SECONDS + 20))
until curl -sf -o /dev/null "http://127.0.0.1:$REG_PORT/v2/"; do
  ((SECONDS < deadline)) || { cat "$WORK/registry.log" >&2; fail "local registry did not start"; }
  kill -0 "$REGISTRY_PID" 2>/dev/null || { cat "$WORK/registry.log" >&2; fail "local registry exited"; }
  sleep 0.2
done
REGISTRY="127.0.0.1:$REG_PORT"
log "registry up at $REGISTRY"
SHA="$(git rev-parse HEAD 2>/dev/null || echo 0123456789abcdef0123456789abcdef01234567)"
common_env=(BUILD_TOOL=podman SKIP_LOGIN=1 INSECURE_REGISTRY=1 REPOSITORY_URI="$REGISTRY/prpr"
            IMAGE_TAG="$SHA" PREBUILT_ROOTFS="$ROOTFS")
# negative: no container name -> refuse (never a silent default that could drift)
if env -u CONTAINER_NAME "${common_env[@]}" \
     bash deploy/scripts/build-and-push.sh >"$WORK/neg.json" 2>"$WORK/neg.log"; then
  fail "build-and-push.sh succeeded without CONTAINER_NAME"
fi
grep -q 'CONTAINER_NAME is not set' "$WORK/neg.log" || { cat "$WORK/neg.log" >&2; fail "unexpected error without CONTAINER_NAME"; }
[[ ! -s "$WORK/neg.json" ]] || fail "build-and-push.sh printed something on stdout although it failed"
log "without CONTAINER_NAME the script refuses: $(grep -o 'CONTAINER_NAME is not set.*' "$WORK/neg.log")"
# exactly the buildspec's command: stdout is the file, progress goes to stderr
bp_cmd="$(grep -o 'bash deploy/scripts/build-and-push.sh > imagedefinitions.json' deploy/buildspec.yml)" \
  || fail "buildspec.yml does not run: bash deploy/scripts/build-and-push.sh > imagedefinitions.json"
log "running the buildspec's command: $bp_cmd"
bp_rc=0
env "${common_env[@]}" CONTAINER_NAME="$CONTAINER_NAME" \
  bash deploy/scripts/build-and-push.sh >"$WORK/imagedefinitions.json" 2>"$WORK/build-and-push.log" || bp_rc=$?
grep -E '^build-and-push:' "$WORK/build-and-push.log" | sed 's/^/    | /'
((bp_rc == 0)) || { tail -30 "$WORK/build-and-push.log" >&2; fail "build-and-push.sh exited $bp_rc"; }
PUSHED_URI="$REGISTRY/prpr:$SHA"
expected="[{\"name\":\"$CONTAINER_NAME\",\"imageUri\":\"$PUSHED_URI\"}]"
actual="$(cat "$WORK/imagedefinitions.json")"
[[ "$actual" == "$expected" ]] || fail "imagedefinitions.json is '$actual', want '$expected'"
"$PY" - "$WORK/imagedefinitions.json" "$CONTAINER_NAME" "$PUSHED_URI" <<'PYEOF' || fail "imagedefinitions.json does not parse as expected"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, list) and len(d) == 1 and set(d[0]) == {"name", "imageUri"}, d
assert d[0]["name"] == sys.argv[2] and d[0]["imageUri"] == sys.argv[3], d
PYEOF
log "imagedefinitions.json = $actual"
log "name '$CONTAINER_NAME' equals the container name parsed from service.yml's task definition"
digest="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$PUSHED_URI")" || fail "image $PUSHED_URI is not in the registry"
log "skopeo inspect docker://$PUSHED_URI -> $digest"
manifest="$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
  "http://$REGISTRY/v2/prpr/manifests/$SHA")" || fail "GET /v2/prpr/manifests/$SHA failed"
pushed="$("$PY" -c 'import json,sys; m=json.loads(sys.argv[1]); print(sum(l["size"] for l in m["layers"]) + m["config"]["size"])' "$manifest")"
log "pushed image, compressed as stored in the registry (layers + config): $pushed bytes ($(mb "$pushed") MB)"
((pushed <= MAX_COMPRESSED_BYTES)) || fail "pushed image is larger than 20 MB compressed"
pushed_user="$(skopeo inspect --tls-verify=false --config --format '{{.Config.User}}' "docker://$PUSHED_URI" 2>/dev/null \
  || skopeo inspect --tls-verify=false --config "docker://$PUSHED_URI" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["config"]["User"])')"
[[ "$pushed_user" == "$APP_UID:$APP_UID" ]] || fail "pushed image user is '$pushed_user'"
log "pushed image config User $pushed_user"
kill "$REGISTRY_PID"; wait "$REGISTRY_PID" 2>/dev/null || true; REGISTRY_PID=""
step_ok

# -------------------------------------------------------------- 6. fargate-doctor
step "6: fargate-doctor lint deploy/"
FD="${FARGATE_DOCTOR:-}"
if [[ -z "$FD" ]]; then
  if cargo build -q -p fargate-doctor >"$WORK/fd-build.log" 2>&1; then
    FD="$TARGET_DIR/debug/fargate-doctor"
  else
    tail -5 "$WORK/fd-build.log" | sed 's/^/      /'
  fi
fi
if [[ -z "$FD" || ! -x "$FD" ]]; then
  step_skip "crate fargate-doctor does not build yet"
elif ! "$FD" lint --help >/dev/null 2>&1; then
  step_skip "fargate-doctor has no 'lint' command yet"
else
  fd_args=(lint deploy/)
  if "$FD" lint --help 2>&1 | grep -q -- '--buildspec'; then fd_args+=(--buildspec deploy/buildspec.yml); fi
  # zero findings of any level: fail on notes too when the tool has such a switch
  if "$FD" lint --help 2>&1 | grep -q -- '--fail-on' && "$FD" lint --help 2>&1 | grep -qi 'note'; then
    fd_args+=(--fail-on note)
  fi
  log "$FD ${fd_args[*]}"
  fd_rc=0; "$FD" "${fd_args[@]}" >"$WORK/fd.out" 2>&1 || fd_rc=$?
  sed 's/^/    | /' "$WORK/fd.out"
  ((fd_rc == 0)) || fail "fargate-doctor exited $fd_rc: deploy/ must have zero findings"
  step_ok
fi
