#!/usr/bin/env bash
# Build the prpr image, tag it with the commit SHA, push it, and print the
# imagedefinitions.json that CodePipeline's ECS deploy action reads. The JSON is the only
# thing on stdout (all progress goes to stderr), so the caller names the file:
#
#   bash deploy/scripts/build-and-push.sh > imagedefinitions.json
#
# Runs in CodeBuild (deploy/buildspec.yml) and locally (deploy/test/run.sh, or by hand).
# Run it from the repository root. Environment:
#   CONTAINER_NAME   required. The task definition's container name; CodeBuild gets it
#                    from the service stack's export, the test from service.yml.
#   REPOSITORY_URI   <registry>/<repository>, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/prpr-xyz
#                    (or give REGISTRY and REPOSITORY_NAME instead).
#   IMAGE_TAG        default: $CODEBUILD_RESOLVED_SOURCE_VERSION, else `git rev-parse HEAD`.
#   BUILD_TOOL       docker (default) | podman | buildah
#   SKIP_LOGIN=1     do not log in to ECR (local registries).
#   INSECURE_REGISTRY=1  plain-HTTP registry (podman/buildah only; docker reads its daemon config).
#   PREBUILT_ROOTFS  directory with prpr, etc/ssl/certs/ca-certificates.crt, data/, tmp/:
#                    replaces the Dockerfile's builder (used by the offline test).
#   RUST_IMAGE       builder image override (Dockerfile ARG).
set -euo pipefail

# stdout is reserved for the JSON: keep it on fd 3, send everything else to stderr.
exec 3>&1 1>&2

die() { echo "build-and-push: $*" >&2; exit 1; }

BUILD_TOOL="${BUILD_TOOL:-docker}"
DOCKERFILE="${DOCKERFILE:-deploy/Dockerfile}"

[[ -n "${CONTAINER_NAME:-}" ]] || die "CONTAINER_NAME is not set (it must equal the task definition's container name)"
[[ "$CONTAINER_NAME" =~ ^[A-Za-z0-9_-]{1,255}$ ]] || die "CONTAINER_NAME '$CONTAINER_NAME' is not a valid ECS container name"

if [[ -z "${REPOSITORY_URI:-}" ]]; then
  [[ -n "${REGISTRY:-}" && -n "${REPOSITORY_NAME:-}" ]] || die "set REPOSITORY_URI (or REGISTRY and REPOSITORY_NAME)"
  REPOSITORY_URI="${REGISTRY}/${REPOSITORY_NAME}"
fi
REGISTRY="${REGISTRY:-${REPOSITORY_URI%%/*}}"

if [[ -z "${IMAGE_TAG:-}" ]]; then
  if [[ -n "${CODEBUILD_RESOLVED_SOURCE_VERSION:-}" ]]; then
    IMAGE_TAG="$CODEBUILD_RESOLVED_SOURCE_VERSION"
  else
    IMAGE_TAG="$(git rev-parse HEAD 2>/dev/null)" || die "IMAGE_TAG not set and not in a git checkout"
  fi
fi
[[ "$IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "IMAGE_TAG '$IMAGE_TAG' is not a valid image tag"
IMAGE_URI="${REPOSITORY_URI}:${IMAGE_TAG}"

echo "build-and-push: image ${IMAGE_URI} (tool ${BUILD_TOOL}, container ${CONTAINER_NAME})"

# 1. log in (ECR). `aws ecr get-login` is gone from AWS CLI v2; this is its replacement.
if [[ "${SKIP_LOGIN:-0}" != 1 ]]; then
  region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  [[ -n "$region" ]] || die "AWS_REGION is not set (or set SKIP_LOGIN=1)"
  aws ecr get-login-password --region "$region" \
    | "$BUILD_TOOL" login --username AWS --password-stdin "$REGISTRY"
fi

# 2. build
build_args=(-f "$DOCKERFILE" --target runtime -t "$IMAGE_URI")
[[ -n "${RUST_IMAGE:-}" ]] && build_args+=(--build-arg "RUST_IMAGE=${RUST_IMAGE}")
if [[ -n "${PREBUILT_ROOTFS:-}" ]]; then
  [[ -x "${PREBUILT_ROOTFS}/prpr" ]] || die "PREBUILT_ROOTFS=${PREBUILT_ROOTFS} has no executable prpr"
  build_args+=(--build-context "rootfs=${PREBUILT_ROOTFS}")
fi
case "$BUILD_TOOL" in
  buildah) "$BUILD_TOOL" bud "${build_args[@]}" . ;;
  *)       "$BUILD_TOOL" build "${build_args[@]}" . ;;
esac

# 3. push (the tag is the commit SHA; the ECR repository's tags are immutable)
push_args=()
if [[ "${INSECURE_REGISTRY:-0}" == 1 && "$BUILD_TOOL" != docker ]]; then
  push_args+=(--tls-verify=false)
fi
"$BUILD_TOOL" push "${push_args[@]}" "$IMAGE_URI"

# 4. imagedefinitions.json for CodePipeline's ECS deploy action: `name` must be the
#    task definition's container name, `imageUri` what was just pushed.
echo "build-and-push: pushed ${IMAGE_URI}; imagedefinitions.json names container ${CONTAINER_NAME}"
printf '[{"name":"%s","imageUri":"%s"}]\n' "$CONTAINER_NAME" "$IMAGE_URI" >&3
