#!/usr/bin/env bash
# A Docker engine and the self-hosted tests' workload image, on a machine that may have neither.
#
#   bash scripts/docker_test_engine.sh [--install]
#
# --install  installs Debian's docker.io and busybox-static when they are missing (as root; CI).
# When `docker info` fails, starts dockerd in the background (log: $GPUBROKER_DOCKERD_LOG) and
# waits for it, at most 60 seconds. Then builds gpubroker-test/busybox:latest, unless the current
# version is there: no registry is needed, it is `docker import` of a root filesystem holding a
# static busybox whose httpd serves /www on port 80. The test fixture runs this script too
# (without --install), so the tests start the engine themselves where they can.
set -euo pipefail

IMAGE="gpubroker-test/busybox:latest"
IMAGE_VERSION="1"  # bump when the root filesystem below changes
DOCKERD_LOG="${GPUBROKER_DOCKERD_LOG:-/tmp/gpubroker-dockerd.log}"
BUSYBOX=/bin/busybox

install=false
if [ "${1:-}" = "--install" ]; then install=true; fi

static_busybox() {
  [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1
}

if ! command -v dockerd >/dev/null || ! static_busybox; then
  if ! $install; then
    echo "docker.io or busybox-static is missing: run 'bash $0 --install' as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "no Docker engine answers and only root may start dockerd here" >&2
    exit 1
  fi
  echo "starting dockerd (log: $DOCKERD_LOG)"
  nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not come up within 60 seconds; the end of $DOCKERD_LOG:" >&2
    tail -n 30 "$DOCKERD_LOG" >&2
    exit 1
  fi
fi

built=$(docker image inspect -f '{{ index .Config.Labels "gpubroker.test-image" }}' "$IMAGE" \
  2>/dev/null || true)
if [ "$built" != "$IMAGE_VERSION" ]; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs/bin" "$rootfs/www"
  cp "$BUSYBOX" "$rootfs/bin/busybox"
  ln -s busybox "$rootfs/bin/sh"
  echo "hello from gpubroker-test" >"$rootfs/www/index.html"
  # The workload: log a line, then serve /www. GPUBROKER_TEST_EXIT=<code> makes it print
  # GPUBROKER_TEST_MESSAGE and exit with that code instead, as a crashing workload would.
  cat >"$rootfs/serve" <<'SCRIPT'
#!/bin/sh
echo "gpubroker-test: starting"
if [ -n "$GPUBROKER_TEST_EXIT" ]; then
  echo "$GPUBROKER_TEST_MESSAGE"
  exit "$GPUBROKER_TEST_EXIT"
fi
exec /bin/busybox httpd -f -p 80 -h /www
SCRIPT
  chmod 755 "$rootfs/serve"
  tar -C "$rootfs" -c . | docker import \
    -c 'CMD ["/bin/sh", "/serve"]' \
    -c 'EXPOSE 80' \
    -c "LABEL gpubroker.test-image=$IMAGE_VERSION" \
    - "$IMAGE" >/dev/null
  echo "built $IMAGE"
fi
docker image inspect "$IMAGE" >/dev/null
