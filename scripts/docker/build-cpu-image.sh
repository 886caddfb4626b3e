#!/usr/bin/env bash
# Builds pdserve:<version>-cpu from deploy/docker/Dockerfile.cpu where no image registry and no daemon is
# reachable, then smoke-runs it. debootstrap makes two Debian root filesystems (builder: Node.js 20, its
# headers, npm, g++, make; runtime: Node.js 20 only), buildah imports each as a local base image and runs
# `buildah bud` of the Dockerfile on them (BUILDER_IMAGE / RUNTIME_IMAGE build args). Smoke: in a container
# of the image (buildah run, chroot isolation, the image's USER 10001 and ENTRYPOINT), `pdserve --version`,
# then `pdserve serve` on the default model (stories260k, shipped in the image) answers /health and one
# greedy /v1/completions; the result is printed as one line `smoke-result {json}` (test/deploy/cpu-image.test.ts
# reads it), and each step as `phase <name> <seconds> s`.
#
# Run and timed here, end to end (2026-12-07: Debian 12 host as root, 2 cores shared with other jobs at load
# ~11, buildah 1.28.2 from Debian, trixie bases with Node.js 20.19.2, overlay storage):
#   cold, nothing cached: 680 s = builder base 291 s + runtime base 135 s (debootstrap, apt, import into buildah)
#     + bud 247 s (npm ci from the registry, native -O3 build, tsc, prune) + smoke 6 s
#   warm, sources unchanged: 12 s (every bud step from the layer cache)
#   a changed src/ file: 100 s (bud 94 s: npm ci from the cache, the native core and tsc rebuilt)
#   image localhost/pdserve:0.1.0-cpu 564 MB; the cache under WORK 3 GB cold, 5.9 GB after eight rebuilds (nothing
#   prunes old layers: delete $WORK/containers to reset it)
#   scripts/docker/build-cpu-image.sh            # WORK=/var/tmp/pdserve-image, SUITE=trixie
# Needs root (debootstrap, chroot, buildah's chroot isolation: no daemon, no user namespaces), debootstrap
# and buildah (apt-get install debootstrap buildah), Debian's mirror (apt over http) and the npm registry.
# Exit 77: a prerequisite is missing (the test skips on it). Every step is bounded by `timeout`.
# Cache under $WORK: <name>-rootfs/ (debootstrap'ed, .pdserve-ready once complete; delete the marker to refresh
# the base), containers/ (buildah's storage: base images, the layer cache, the built image).
# Env: DEBIAN_MIRROR (default: the first URIs: of /etc/apt/sources.list.d/debian.sources), SUITE (a Debian
# release whose nodejs is >= 20: trixie), WORK, STORAGE_DRIVER (overlay when it mounts here, else vfs),
# BUILD_CA (a CA bundle npm in the builder must trust, e.g. a TLS-intercepting proxy's; default
# $NODE_EXTRA_CA_CERTS when set: bind-mounted for RUN steps only, never copied into an image),
# T_ROOTFS / T_BUD / T_SMOKE (step time limits, s), SMOKE_PROMPT, SMOKE_MAX_TOKENS, SMOKE_PORT,
# EXPORT_ARCHIVE (a path: the image also written there as a docker-archive tar, for `docker load -i`,
# `kind load image-archive` or `ctr -n k8s.io images import`; 655 MB in 6 s here).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(node -p 'require("./package.json").version')
SUITE=${SUITE:-trixie}
WORK=${WORK:-/var/tmp/pdserve-image}
T_ROOTFS=${T_ROOTFS:-1200}
T_BUD=${T_BUD:-2400}
T_SMOKE=${T_SMOKE:-240}
SMOKE_PROMPT=${SMOKE_PROMPT:-Once upon a time}
SMOKE_MAX_TOKENS=${SMOKE_MAX_TOKENS:-16}
SMOKE_PORT=${SMOKE_PORT:-18000} # on the host's loopback (chroot isolation shares the host's network)
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
TAG="localhost/pdserve:${VERSION}-cpu"

need() { echo "build-cpu-image: needs $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || need "root (debootstrap, chroot and buildah's chroot isolation)"
for t in debootstrap buildah chroot timeout findmnt flock; do command -v "$t" >/dev/null || need "$t (apt-get install debootstrap buildah)"; done
[ -n "$MIRROR" ] || need "a Debian mirror: set DEBIAN_MIRROR"

T0=$SECONDS
phase() { # name, command...: runs it, then prints how long it took
  local name=$1 t=$SECONDS
  shift
  "$@"
  echo "phase $name $((SECONDS - t)) s"
}

mkdir -p "$WORK/containers"
# one build per WORK at a time (the cleanup below removes every working container in its storage)
exec 9>"$WORK/.lock"
flock -w 1800 9 || { echo "build-cpu-image: $WORK/.lock is held by another build (30 min)" >&2; exit 1; }
STORE=(--root "$WORK/containers/root" --runroot "$WORK/containers/run")
if [ -z "${STORAGE_DRIVER:-}" ]; then
  # overlay when this kernel/filesystem mounts it (layers cost no copies), else vfs (works in containers);
  # the driver is fixed per storage root, so an existing root keeps the one it was made with
  if [ -f "$WORK/containers/driver" ]; then STORAGE_DRIVER=$(cat "$WORK/containers/driver")
  else
    STORAGE_DRIVER=vfs
    probe=$(timeout 60 buildah "${STORE[@]}" --storage-driver overlay from scratch 2>/dev/null) \
      && timeout 60 buildah "${STORE[@]}" --storage-driver overlay mount "$probe" >/dev/null 2>&1 && STORAGE_DRIVER=overlay
    [ -n "${probe:-}" ] && timeout 60 buildah "${STORE[@]}" --storage-driver overlay rm "$probe" >/dev/null 2>&1 || true
    [ "$STORAGE_DRIVER" = overlay ] || rm -rf --one-file-system "$WORK/containers/root" "$WORK/containers/run"
  fi
fi
echo "$STORAGE_DRIVER" > "$WORK/containers/driver"
BH=(buildah "${STORE[@]}" --storage-driver "$STORAGE_DRIVER")
export BUILDAH_ISOLATION=chroot
# working containers left by an earlier run that was stopped (the storage root is this script's own)
timeout 120 "${BH[@]}" rm --all >/dev/null 2>&1 || true

unmount_below() { # a killed debootstrap leaves proc/sys mounted inside the target: never rm -rf through them
  findmnt -rn -o TARGET | awk -v d="$1/" 'index($0, d) == 1' | sort -r | while read -r m; do umount -l "$m" || true; done
}

declare -A BASE # name -> the base image's tag
rootfs() { # name, comma-separated packages: a cached debootstrap'ed rootfs -> localhost/pdserve-<name>-base:<suite>-<stamp>
  local dir="$WORK/$1-rootfs"
  if [ ! -f "$dir/.pdserve-ready" ]; then
    unmount_below "$dir"
    rm -rf --one-file-system "$dir"
    # debootstrap's own resolver misses some of Debian npm's dependencies (dpkg: "npm depends on
    # node-cli-table3 ... not installed"): bootstrap the base, then let apt resolve the packages
    timeout --kill-after=10 "$T_ROOTFS" debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    timeout --kill-after=10 "$T_ROOTFS" chroot "$dir" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${2//,/ } && apt-get clean && rm -rf /var/lib/apt/lists/*"
    unmount_below "$dir"
    date -u +%Y%m%d%H%M%S > "$dir/.pdserve-ready"
  fi
  # the marker's stamp names the image: a refreshed rootfs is a new base (and a new layer cache)
  local img stamp
  stamp=$(tr -cd '0-9' < "$dir/.pdserve-ready")
  img="localhost/pdserve-$1-base:$SUITE-${stamp:-0}"
  BASE[$1]=$img
  if ! timeout 60 "${BH[@]}" inspect --type image "$img" >/dev/null 2>&1; then
    local ctr mnt
    ctr=$(timeout 60 "${BH[@]}" from scratch)
    mnt=$(timeout 60 "${BH[@]}" mount "$ctr")
    timeout 600 cp -a --one-file-system "$dir/." "$mnt/"
    rm -f "$mnt/.pdserve-ready"
    timeout 60 "${BH[@]}" umount "$ctr" >/dev/null
    timeout 60 "${BH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    timeout 600 "${BH[@]}" commit --quiet --rm "$ctr" "$img" >/dev/null
  fi
  echo "base image $img ($(timeout 30 chroot "$dir" node --version))"
}

# The bases and a probe RUN are this machine's side (mirror, chroot, mounts, storage): when one fails, the
# environment cannot build images and the script says so with exit 77 (the test skips, printing the line).
# From `bud` on, a failure is the Dockerfile's or the image's, and fails the test.
cant_build() { echo "build-cpu-image: this machine cannot build images: step '$1' failed (exit $2); see the lines above" >&2; exit 77; }
env_step() { # name, command...: runs it in a subshell under errexit (not in an || list, where bash ignores it)
  local name=$1 rc
  shift
  set +e
  ( set -e; phase "$name" "$@" )
  rc=$?
  set -e
  [ "$rc" = 0 ] || cant_build "$name" "$rc"
}
base_tag() { # name -> the tag rootfs() gave its base (the subshell's BASE is lost)
  local stamp
  stamp=$(tr -cd '0-9' < "$WORK/$1-rootfs/.pdserve-ready")
  echo "localhost/pdserve-$1-base:$SUITE-${stamp:-0}"
}
probe_run() { # one RUN as bud does it (chroot isolation, its mounts): the runtime base runs its node
  local ctr
  ctr=$(timeout 60 "${BH[@]}" from "$(base_tag runtime)")
  timeout 120 "${BH[@]}" run "$ctr" -- node --version
  timeout 60 "${BH[@]}" rm "$ctr" >/dev/null
}
env_step rootfs-builder rootfs builder nodejs,npm,libnode-dev,g++,make,ca-certificates
env_step rootfs-runtime rootfs runtime nodejs,ca-certificates,passwd
BASE[builder]=$(base_tag builder)
BASE[runtime]=$(base_tag runtime)
env_step probe-run probe_run

CA=${BUILD_CA:-${NODE_EXTRA_CA_CERTS:-}}
CA_ARGS=()
if [ -n "$CA" ] && [ -f "$CA" ]; then
  CA_ARGS=(-v "$CA:/run/pdserve-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/pdserve-build-ca.crt)
fi
# --layers: a rerun reuses every step whose inputs are unchanged (npm ci unless package*.json changed)
phase bud timeout --kill-after=30 "$T_BUD" "${BH[@]}" bud --network host --layers --format docker "${CA_ARGS[@]}" \
  --build-arg "BUILDER_IMAGE=${BASE[builder]}" --build-arg "RUNTIME_IMAGE=${BASE[runtime]}" \
  -f deploy/docker/Dockerfile.cpu -t "$TAG" .

# the image's config as one JSON line (docker format: the OCI format would drop HEALTHCHECK)
timeout 60 "${BH[@]}" inspect --type image "$TAG" \
  | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log("image-config " + JSON.stringify(JSON.parse(s).Docker.config)))'

# smoke: a container of the image, its own user and entrypoint, loopback only
ctr=$(timeout 60 "${BH[@]}" from "$TAG")
trap 'timeout 60 "${BH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
smoke() {
  timeout --kill-after=10 60 "${BH[@]}" run --network host "$ctr" -- pdserve --version
  timeout --kill-after=10 "$T_SMOKE" "${BH[@]}" run --network host \
    -e "SMOKE_PROMPT=$SMOKE_PROMPT" -e "SMOKE_MAX_TOKENS=$SMOKE_MAX_TOKENS" -e "SMOKE_PORT=$SMOKE_PORT" -e "SMOKE_DEADLINE_MS=$(((T_SMOKE - 30) * 1000))" "$ctr" -- sh -c '
    pdserve serve --host 127.0.0.1 --port "$SMOKE_PORT" & pid=$!
    node -e "
      const base = \"http://127.0.0.1:\" + process.env.SMOKE_PORT;
      const end = Date.now() + Number(process.env.SMOKE_DEADLINE_MS);
      const get = (p, init) => fetch(base + p, { ...init, signal: AbortSignal.timeout(Math.max(1000, end - Date.now())) });
      (async () => {
        let health = 0;
        while (health !== 200) {
          try { health = (await get(\"/health\")).status; } catch {}
          if (health !== 200 && Date.now() > end) { console.error(\"smoke: no /health before the deadline\"); process.exit(1); }
          if (health !== 200) await new Promise((r) => setTimeout(r, 200));
        }
        const r = await get(\"/v1/completions\", { method: \"POST\", headers: { \"content-type\": \"application/json\" },
          body: JSON.stringify({ prompt: process.env.SMOKE_PROMPT, max_tokens: Number(process.env.SMOKE_MAX_TOKENS), temperature: 0 }) });
        const j = await r.json();
        console.log(\"smoke-result \" + JSON.stringify({ uid: process.getuid(), gid: process.getgid(), health, status: r.status,
          model: j.model, text: j.choices?.[0]?.text, usage: j.usage }));
        process.exit(r.status === 200 ? 0 : 1);
      })().catch((e) => { console.error(\"smoke:\", e.message); process.exit(1); });
    "; rc=$?; kill $pid; wait $pid; exit $rc'
}
phase smoke smoke
if [ -n "${EXPORT_ARCHIVE:-}" ]; then
  rm -f "$EXPORT_ARCHIVE"
  phase export timeout 600 "${BH[@]}" push --quiet "$TAG" "docker-archive:$EXPORT_ARCHIVE:pdserve:${VERSION}-cpu"
fi
timeout 60 "${BH[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "pdserve" || true
echo "built $TAG in $((SECONDS - T0)) s"
