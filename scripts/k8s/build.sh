#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler v1.20.2) from Debian bookworm's `kubernetes` source package with
# Debian's Go toolchain, offline apart from apt, and fetch Debian's etcd.
# Idempotent: does nothing when the binaries are already in place.
#   usage: build.sh [BIN_DIR]     (default: $PLAIT_ENVTEST_BIN or /var/cache/plait-envtest/bin)
# (Copied from the project's shared/k8s so a fresh clone has it.)
# Takes about 5 minutes and 1.5 GB of memory on 2 cores the first time.
set -euo pipefail
BIN=${1:-${PLAIT_ENVTEST_BIN:-/var/cache/plait-envtest/bin}}
if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kube-scheduler" ] && [ -x "$BIN/etcd" ]; then
  echo "envtest binaries present in $BIN"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
WORK=$(mktemp -d /tmp/plait-kube-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends golang-go rsync golang-github-modern-go-reflect2-dev \
  ca-certificates make openssl curl >/dev/null
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/apt/parts"
# Source and binary entries for the machine's own Debian mirror: the first stanza of its apt
# sources (deb822 format), with deb-src added; the one-line format is converted the same way.
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
  awk 'BEGIN { RS = ""; ORS = "\n\n" } NR == 1' $(ls /etc/apt/sources.list.d/*.sources | head -1) \
    | sed -E 's/^Types:.*/Types: deb-src deb/' > "$WORK/apt/parts/src.sources"
else
  line=$(grep -m1 -E '^deb ' /etc/apt/sources.list)
  { echo "$line"; echo "${line/deb /deb-src }"; } > "$WORK/apt/parts/src.list"
fi
APTO=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$WORK/apt/parts"
      -o Dir::State::Lists="$WORK/apt/lists" -o Dir::Cache="$WORK/apt/cache")
apt-get "${APTO[@]}" update >/dev/null
cd "$WORK"
# etcd: take the binary out of Debian's package without installing (and starting) a system service
apt-get "${APTO[@]}" download etcd-server >/dev/null
dpkg-deb -x etcd-server_*.deb "$WORK/etcd-root"
apt-get "${APTO[@]}" source --download-only kubernetes >/dev/null 2>&1
tar xzf kubernetes_*.orig.tar.gz
cd kubernetes-*/
tar xJf ../kubernetes_*.debian.tar.xz
for p in $(grep -v '^#' debian/patches/series); do patch -s -p1 < "debian/patches/$p"; done
# Go >= 1.18 needs reflect2 >= 1.0.2; take Debian's packaged copy.
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2/go.mod vendor/github.com/modern-go/reflect2/*_test.go vendor/github.com/modern-go/reflect2/test*
sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#g' go.mod vendor/modules.txt
HOME="$WORK/home" CGO_ENABLED=0 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >"$WORK/make.log" 2>&1 \
  || { tail -40 "$WORK/make.log"; exit 1; }
mkdir -p "$BIN"
cp _output/bin/kube-apiserver _output/bin/kube-controller-manager _output/bin/kube-scheduler "$BIN/"
cp "$WORK/etcd-root/usr/bin/etcd" "$BIN/etcd"
"$BIN/kube-apiserver" --version
"$BIN/etcd" --version | sed -n 1p   # sed reads it all: `head` closing early was SIGPIPE (141) under pipefail
