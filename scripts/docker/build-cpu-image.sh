#!/usr/bin/env bash
# Builds pdserve:<version>-cpu from deploy/docker/Dockerfile.cpu where no image registry and no daemon is
# reachable: debootstrap makes two Debian root filesystems (builder: Node.js 20, its headers, g++, make;
# runtime: Node.js 20 only), buildah turns each into a local base image, builds the Dockerfile on them
# (BUILDER_IMAGE / RUNTIME_IMAGE) and smoke-runs the result: `pdserve --version`, then `pdserve serve`
# (default model) answering /health and one completion, as the image's non-root user.
# Needs root, debootstrap, buildah, and Debian's package mirror + the npm registry (npm ci in the builder).
# Manual (minutes, ~1.5 GB under $WORK); not run by npm test. Status when written: the debootstrap and
# buildah steps worked here separately (trixie runtime rootfs with Node.js 20.19 in ~7 min, imported with
# buildah --storage-driver vfs and run with chroot isolation); the full `buildah bud` of Dockerfile.cpu and
# the smoke run below were not run to the end (time).
#   scripts/docker/build-cpu-image.sh            # WORK=/var/tmp/pdserve-image, SUITE=trixie
# Env: DEBIAN_MIRROR (default: the first URIs: of /etc/apt/sources.list.d/debian.sources), SUITE (a Debian
# release whose nodejs is >= 20: trixie), WORK, STORAGE_DRIVER (buildah's; vfs works inside containers).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(node -p 'require("./package.json").version')
SUITE=${SUITE:-trixie}
WORK=${WORK:-/var/tmp/pdserve-image}
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
[ -n "$MIRROR" ] || { echo "set DEBIAN_MIRROR" >&2; exit 2; }
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
TAG="pdserve:${VERSION}-cpu"
mkdir -p "$WORK"

rootfs() { # name, packages
  local dir="$WORK/$1-rootfs"
  if [ ! -f "$dir/.pdserve-ready" ]; then
    rm -rf "$dir"
    # debootstrap's own resolver misses some of Debian npm's dependencies (dpkg: "npm depends on
    # node-cli-table3 ... not installed"): bootstrap the base, then let apt resolve the packages
    debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    chroot "$dir" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${2//,/ } && apt-get clean"
    touch "$dir/.pdserve-ready"
  fi
  local ctr mnt
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$dir/." "$mnt/"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet --rm "$ctr" "localhost/pdserve-$1-base:$SUITE" >/dev/null
  echo "base image localhost/pdserve-$1-base:$SUITE ($(chroot "$dir" node --version))"
}

rootfs builder nodejs,npm,libnode-dev,g++,make,python3,ca-certificates
rootfs runtime nodejs,ca-certificates,passwd

buildah bud --network host --layers=false \
  --build-arg "BUILDER_IMAGE=localhost/pdserve-builder-base:$SUITE" \
  --build-arg "RUNTIME_IMAGE=localhost/pdserve-runtime-base:$SUITE" \
  -f deploy/docker/Dockerfile.cpu -t "$TAG" .

# smoke: the image's own user and entrypoint, loopback only
ctr=$(buildah from "$TAG")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah run --network host "$ctr" -- pdserve --version
buildah run --network host "$ctr" -- sh -c '
  pdserve serve --host 127.0.0.1 --port 18000 & pid=$!
  node -e "
    const end = Date.now() + 120000;
    (async () => {
      for (;;) {
        try { if ((await fetch(\"http://127.0.0.1:18000/health\")).ok) break; } catch {}
        if (Date.now() > end) { console.error(\"no /health in 120 s\"); process.exit(1); }
        await new Promise((r) => setTimeout(r, 200));
      }
      const r = await fetch(\"http://127.0.0.1:18000/v1/completions\", { method: \"POST\", headers: { \"content-type\": \"application/json\" },
        body: JSON.stringify({ prompt: \"Once upon a time\", max_tokens: 8, temperature: 0 }) });
      const j = await r.json();
      console.log(\"smoke: uid\", process.getuid(), \"status\", r.status, JSON.stringify(j.choices?.[0]?.text));
      process.exit(r.status === 200 ? 0 : 1);
    })();
  "; rc=$?; kill $pid; exit $rc'
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "pdserve" || true
echo "built $TAG"
