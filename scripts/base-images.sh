#!/usr/bin/env bash
# Stand-in base images for a machine that runs containers (podman, or docker) but cannot pull from an image
# registry: they are built here from Debian's packages and this machine's Node, and tagged with the upstream
# names that the Dockerfile and docker-compose.yml use, so that those files work unchanged:
#
#   quay.io/coreos/etcd:v3.4.23             Debian bookworm minbase + etcd-server and etcd-client (3.4.23)
#   docker.io/library/node:20-bookworm-slim the same Debian + this machine's node binary, its npm, a `node`
#                                           user (uid 1000, as upstream) and this machine's CA bundle
#
# Where a registry is reachable, do not run this: the real images are pulled instead. Nothing here is read
# by the Dockerfile; it only provides what its FROM line names, so none of it reaches an image built elsewhere.
# The CA bundle is copied so that `npm ci` inside a build trusts what this machine trusts (a TLS-inspecting
# proxy, say); NODE_EXTRA_CA_CERTS in the stand-in points at it.
#
# Idempotent: an image that already exists is kept (REBUILD=1 rebuilds all three). Needs root (mmdebstrap
# builds the root file system, ~50 s), a Debian mirror, and `node` on PATH in the major version the tag names.
# Usage: scripts/base-images.sh            (CONTAINER_ENGINE=docker to use docker instead of podman)
set -euo pipefail

ENGINE=${CONTAINER_ENGINE:-podman}
SUITE=bookworm
DEBIAN_IMAGE=localhost/dirigent-stand-in/debian:bookworm
ETCD_IMAGE=quay.io/coreos/etcd:v3.4.23
NODE_IMAGE=docker.io/library/node:20-bookworm-slim
NODE_MAJOR=20

say() { printf 'base-images: %s\n' "$*" >&2; }
exists() { [[ "${REBUILD:-0}" != 1 ]] && "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
# Copies one file out of an image without running it (no container runtime involved).
copy_out() {
  local id
  id=$("$ENGINE" create "$1" true)
  "$ENGINE" cp "$id:$2" "$3" && "$ENGINE" rm "$id" >/dev/null || { "$ENGINE" rm "$id" >/dev/null; return 1; }
}

command -v "$ENGINE" >/dev/null || { say "$ENGINE is not installed"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if exists "$DEBIAN_IMAGE"; then
  say "$DEBIAN_IMAGE exists"
else
  command -v mmdebstrap >/dev/null || { say "mmdebstrap is not installed (apt-get install mmdebstrap)"; exit 1; }
  say "building a Debian $SUITE root file system with etcd (mmdebstrap, about a minute)"
  # Without documentation and translations, as Debian's -slim images are.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates,etcd-server,etcd-client \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' "$SUITE" "$work/rootfs.tar"
  "$ENGINE" import --quiet --change 'CMD ["bash"]' "$work/rootfs.tar" "$DEBIAN_IMAGE" >/dev/null
  rm -f "$work/rootfs.tar"
  REBUILD=1 # what derives from it is stale now
fi

# Both derived images are built without a RUN step (COPY and metadata only), so no container runs here.
if exists "$ETCD_IMAGE"; then
  say "$ETCD_IMAGE exists"
else
  copy_out "$DEBIAN_IMAGE" /var/lib/dpkg/status "$work/dpkg-status"
  version=$(awk '/^Package: etcd-server$/ { found = 1 } found && /^Version:/ { print $2; exit }' "$work/dpkg-status")
  version=${version%%-*} # 3.4.23-4+b4 -> 3.4.23
  [[ "v$version" == "${ETCD_IMAGE##*:}" ]] || { say "Debian's etcd is $version, not ${ETCD_IMAGE##*:}: change ETCD_IMAGE here and in docker-compose.yml"; exit 1; }
  mkdir -p "$work/etcd"
  printf 'FROM %s\nEXPOSE 2379 2380\nCMD ["etcd"]\n' "$DEBIAN_IMAGE" >"$work/etcd/Dockerfile"
  "$ENGINE" build --quiet --pull=never --network none -t "$ETCD_IMAGE" "$work/etcd" >/dev/null
  say "built $ETCD_IMAGE"
fi

if exists "$NODE_IMAGE"; then
  say "$NODE_IMAGE exists"
else
  node_bin=$(readlink -f "$(command -v node)")
  major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
  [[ "$major" == "$NODE_MAJOR" ]] || { say "node on PATH is $("$node_bin" --version); the stand-in for $NODE_IMAGE needs Node $NODE_MAJOR"; exit 1; }
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [[ -f "$npm_dir/package.json" ]] || { say "cannot find npm's folder (found $npm_dir)"; exit 1; }
  ca_bundle="$(openssl version -d | sed -n 's/^OPENSSLDIR: "\(.*\)"$/\1/p')/certs/ca-certificates.crt"
  [[ -f "$ca_bundle" ]] || { say "no CA bundle at $ca_bundle"; exit 1; }
  overlay="$work/node/overlay"
  mkdir -p "$overlay/usr/local/bin" "$overlay/usr/local/lib/node_modules" "$overlay/etc" "$overlay/usr/local/share/ca-certificates" "$work/node/home"
  cp "$node_bin" "$overlay/usr/local/bin/node"
  cp -a "$npm_dir" "$overlay/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$overlay/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$overlay/usr/local/bin/npx"
  cp "$ca_bundle" "$overlay/usr/local/share/ca-certificates/host-bundle.crt"
  # The `node` user and group as upstream has them (uid and gid 1000), added to the Debian image's own files.
  copy_out "$DEBIAN_IMAGE" /etc/passwd "$overlay/etc/passwd"
  copy_out "$DEBIAN_IMAGE" /etc/group "$overlay/etc/group"
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$overlay/etc/passwd"
  echo 'node:x:1000:' >>"$overlay/etc/group"
  cat >"$work/node/Dockerfile" <<DOCKERFILE
FROM $DEBIAN_IMAGE
COPY overlay/ /
COPY --chown=1000:1000 home/ /home/node/
ENV NODE_VERSION=$("$node_bin" -p process.versions.node) NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host-bundle.crt
CMD ["node"]
DOCKERFILE
  "$ENGINE" build --quiet --pull=never --network none -t "$NODE_IMAGE" "$work/node" >/dev/null
  say "built $NODE_IMAGE (node $("$node_bin" --version), npm $(cat "$npm_dir/package.json" | "$node_bin" -p 'JSON.parse(require("fs").readFileSync(0)).version'))"
fi
