#!/usr/bin/env bash
# Stage what a GPU host needs to run scripts/gpu/check.sh, into .staging/
# (ignored by git):
#
#   .staging/bin/sdgate                    this checkout, built here
#   .staging/ort-1.29/                     ONNX Runtime 1.29 core, providers_shared and the
#                                          CUDA 13 provider (plugin-capable), from npm
#   .staging/ort-1.30/                     the 1.30 core of `make deps`, with the same
#                                          provider libraries beside it (links)
#   .staging/MANIFEST                      what is where, versions, checksums, commit
#   .staging/parts/sdgate-gpu.tar.xz.NN    all of the above, tar + xz, split into parts of
#   .staging/parts/sdgate-gpu.tar.xz.sha256  at most PART_BYTES (55 MB): the only files to
#                                          carry to the host, one part per call
#
# Usage: scripts/gpu/stage.sh            (from the repo root; downloads ~330 MB once)
# Env:   PART_BYTES (default 55000000), CACHE_DIR (default $HOME/.cache/sdgate),
#        XZ_OPT (default -6 -T0).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=parts.sh
source "$here/parts.sh"

# The CUDA provider: ONNX Runtime 1.29's CUDA execution provider for CUDA 13
# and cuDNN 9, packaged for Unity by asus4; its core library comes from the
# companion package. Pinned by checksum.
GPU_PKG=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
GPU_TGZ=com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz
GPU_TGZ_SHA=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
CORE_PKG=com.github.asus4.onnxruntime@0.4.9
CORE_TGZ=com.github.asus4.onnxruntime-0.4.9.tgz
CORE_TGZ_SHA=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
PKG_DIR=package/Plugins/Linux/x64

STAGING=.staging
PARTS_PREFIX=$STAGING/parts/sdgate-gpu.tar.xz

# fetch PACKAGE TGZ SHA256: the npm tarball, from the cache or npm pack.
fetch() {
	local pkg=$1 tgz=$2 sha=$3
	mkdir -p "$CACHE_DIR"
	if ! echo "$sha  $CACHE_DIR/$tgz" | sha256sum -c --status 2>/dev/null; then
		echo "fetching $pkg with npm pack" >&2
		(cd "$CACHE_DIR" && npm pack --silent "$pkg" >/dev/null)
	fi
	echo "$sha  $CACHE_DIR/$tgz" | sha256sum -c --quiet
	printf '%s\n' "$CACHE_DIR/$tgz"
}

# extract TGZ DEST FILE...: files of the package's Linux x64 folder into DEST.
extract() {
	local tgz=$1 dest=$2
	shift 2
	mkdir -p "$dest"
	local f
	for f in "$@"; do
		tar -xzf "$tgz" -O "$PKG_DIR/$f" >"$dest/$f.tmp"
		chmod 755 "$dest/$f.tmp"
		mv "$dest/$f.tmp" "$dest/$f"
	done
}

commit() {
	local c
	c=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || c+=-dirty
	printf '%s\n' "$c"
}

main() {
	[[ -f go.mod && -d sd ]] || { echo "run from the repository root" >&2; exit 1; }
	CACHE_DIR=${CACHE_DIR:-$HOME/.cache/sdgate}
	local part_bytes=${PART_BYTES:-$PART_BYTES_DEFAULT}
	local gpu_tgz core_tgz version rev
	gpu_tgz=$(fetch "$GPU_PKG" "$GPU_TGZ" "$GPU_TGZ_SHA")
	core_tgz=$(fetch "$CORE_PKG" "$CORE_TGZ" "$CORE_TGZ_SHA")
	make --no-print-directory deps >&2

	rm -rf "$STAGING"
	mkdir -p "$STAGING/bin" "$STAGING/parts"
	rev=$(commit) # once: others may commit while this runs
	version="git-$rev"
	echo "building bin/sdgate $version" >&2
	CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$STAGING/bin/sdgate" ./cmd/sdgate

	echo "unpacking the ONNX Runtime 1.29 libraries" >&2
	extract "$core_tgz" "$STAGING/ort-1.29" libonnxruntime.so libonnxruntime_providers_shared.so
	extract "$gpu_tgz" "$STAGING/ort-1.29" libonnxruntime_providers_cuda.so
	# The 1.30 core (a CUDA-enabled build) with the same providers beside it:
	# check.sh tries it when the 1.29 pair does not run.
	mkdir -p "$STAGING/ort-1.30"
	cp -L lib/libonnxruntime.so "$STAGING/ort-1.30/libonnxruntime.so"
	ln -s ../ort-1.29/libonnxruntime_providers_shared.so "$STAGING/ort-1.30/"
	ln -s ../ort-1.29/libonnxruntime_providers_cuda.so "$STAGING/ort-1.30/"

	{
		echo "sdgate GPU staging, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $rev, $(go version)"
		echo "packages: $GPU_PKG ($GPU_TGZ_SHA), $CORE_PKG ($CORE_TGZ_SHA), onnxruntime-node@1.30.0 (make deps)"
		echo "the CUDA provider needs at run time: libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9 (as libcudnn.so) libcuda.so.1"
		(cd "$STAGING" && find bin ort-1.29 ort-1.30 -type f -exec sha256sum {} + | sort -k2)
	} >"$STAGING/MANIFEST"

	echo "compressing (xz ${XZ_OPT:--6 -T0}) and splitting into parts of at most $part_bytes bytes" >&2
	tar -C "$STAGING" -cf - MANIFEST bin ort-1.29 ort-1.30 |
		XZ_OPT=${XZ_OPT:--6 -T0} xz -c |
		split_parts "$PARTS_PREFIX" "$part_bytes"

	local p size n=0
	while read -r p; do
		size=$(stat -c %s "$p")
		((size <= part_bytes)) || { echo "$p is $size bytes, over $part_bytes" >&2; exit 1; }
		awk -v p="$p" -v s="$size" 'BEGIN { printf "%s\t%d bytes\t%.1f MiB\n", p, s, s / 1048576 }'
		n=$((n + 1))
	done < <(list_parts "$PARTS_PREFIX")
	echo "$n parts; carry one per call with $PARTS_PREFIX.sha256 in the first (docs/performance.md)" >&2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
