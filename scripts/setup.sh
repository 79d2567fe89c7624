#!/bin/sh
# Installs everything Ambit needs on a Debian machine, idempotently: the Debian packages the
# local cluster and the tests use, the npm packages, the native addon, and the TypeScript build.
# Safe to run again; steps already done are skipped quickly.
set -eu
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

DEB_PACKAGES="iproute2 iptables tcpdump curl python3 python3-h2 procps"
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
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ -f native/binding.gyp ]; then
  if [ ! -f native/build/Release/ambit_native.node ] || [ -n "$(find native -maxdepth 1 -newer native/build/Release/ambit_native.node \( -name '*.c*' -o -name binding.gyp \) 2>/dev/null)" ]; then
    say "building the native addon (node-gyp)"
    # Build offline against the installed Node headers: node-gyp run directly does not read
    # npm's `nodedir` setting, and without one it tries to download headers.
    nodedir="$(npm config get nodedir 2>/dev/null || true)"
    if [ -z "$nodedir" ] || [ "$nodedir" = "undefined" ] || [ "$nodedir" = "null" ]; then nodedir=""; fi
    if [ -z "$nodedir" ] && [ -f /usr/include/node/node_api.h ]; then nodedir=/usr; fi
    (cd native && node "$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js" rebuild --loglevel=error ${nodedir:+--nodedir="$nodedir"}) || {
      echo "ambit setup: the native addon did not build; it needs python3, make, g++ and Node's headers" >&2
      exit 1
    }
  fi
fi

say "compiling TypeScript"
npx tsc -p tsconfig.json
