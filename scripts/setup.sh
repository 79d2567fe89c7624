#!/bin/sh
# Installs everything Ambit needs on a Debian machine, idempotently: the Debian packages the
# local cluster and the tests use, the npm packages, the native addon, and the TypeScript build.
# Safe to run again; steps already done are skipped quickly.
set -eu
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

DEB_PACKAGES="iproute2 iptables tcpdump curl python3 python3-h2 procps"
# The local cluster makes pods the way a Kubernetes runtime does: a CNI chain of the standard
# plugins (ptp, static IPAM) and then ambit-cni.
DEB_PACKAGES="$DEB_PACKAGES containernetworking-plugins"
# The benchmark suite (`npm run bench`) and its smoke test: the peers and the load tools.
DEB_PACKAGES="$DEB_PACKAGES stunnel4 haproxy iperf3 wrk hey"
missing=""
for p in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ambit setup: missing Debian packages:$missing" >&2
    echo "  run as root, or install them first: sudo apt-get install -y$missing" >&2
    exit 1
  fi
  say "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (and Node.js 24 from the npm registry)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Ambit runs on Node.js 24 LTS, installed as an npm package (node-linux-<arch>, pinned in
# package.json) so that the machine's own Node.js only bootstraps npm. npm scripts find it
# first on their PATH (node_modules/.bin); `bin/ambit` runs it explicitly.
NODE="$PWD/node_modules/.bin/node"
NODE_HOME="$(cd "$(dirname "$(readlink -f "$NODE")")/.." 2>/dev/null && pwd || true)"
if [ ! -x "$NODE" ] || [ "$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "24" ]; then
  echo "ambit setup: Node.js 24 did not install into node_modules (package node-linux-$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')); is this machine x64 or arm64 Linux?" >&2
  exit 1
fi

if [ -f native/binding.gyp ]; then
  addon=native/build/Release/ambit_native.node
  stamp=native/build/node-version
  if [ ! -f "$addon" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$("$NODE" --version)" ] || [ -n "$(find native -maxdepth 1 -newer "$addon" \( -name '*.c*' -o -name binding.gyp \) 2>/dev/null)" ]; then
    say "building the native addon (node-gyp, against Node.js $("$NODE" --version)'s headers)"
    # node-gyp is a devDependency (the machine's npm may run on another Node); offline, against
    # the headers shipped in the Node.js 24 package: node-gyp must not
    # download them.
    (cd native && "$NODE" ../node_modules/node-gyp/bin/node-gyp.js rebuild --loglevel=error --nodedir="$NODE_HOME") || {
      echo "ambit setup: the native addon did not build; it needs python3, make, g++ (Node's headers come with node_modules/node-linux-*)" >&2
      exit 1
    }
    "$NODE" --version > "$stamp"
  fi
fi

# ambit-cni, the chained CNI plugin: a small C program (a runtime starts it once per pod and
# waits; Node.js would add ~90 ms per start). Built after the addon: node-gyp rebuild empties
# native/build.
if [ -f native/ambit-cni.c ]; then
  cni=native/build/ambit-cni
  if [ ! -x "$cni" ] || [ native/ambit-cni.c -nt "$cni" ]; then
    say "building the CNI plugin (native/build/ambit-cni)"
    mkdir -p native/build
    cc -std=gnu11 -O2 -Wall -Wextra -static -o "$cni" native/ambit-cni.c 2>/dev/null ||
      cc -std=gnu11 -O2 -Wall -Wextra -o "$cni" native/ambit-cni.c || {
        echo "ambit setup: the CNI plugin did not build; it needs a C compiler (cc)" >&2
        exit 1
      }
  fi
fi

say "compiling TypeScript"
"$NODE" node_modules/typescript/bin/tsc -p tsconfig.json

# `ambit` on the PATH for a person at a shell (root installs system-wide; others get a hint).
if [ "$(id -u)" -eq 0 ] && [ -d /usr/local/bin ]; then
  # Linked when missing or dangling: another checkout of the project keeps its own link.
  if [ ! -e /usr/local/bin/ambit ]; then
    ln -sf "$PWD/bin/ambit" /usr/local/bin/ambit
    say "linked /usr/local/bin/ambit -> $PWD/bin/ambit"
  fi
elif ! command -v ambit >/dev/null 2>&1; then
  say "add $PWD/bin to your PATH to type \`ambit\`"
fi
