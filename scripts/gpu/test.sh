#!/usr/bin/env bash
# Tests of the GPU staging scripts that need no GPU and no network:
#   bash scripts/gpu/test.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

check() { # check NAME COMMAND...: run, report
	local name=$1
	shift
	if "$@"; then
		echo "ok   $name"
	else
		echo "FAIL $name"
		failures=$((failures + 1))
	fi
}
fails() { ! "$@" >/dev/null 2>&1; }
into() { # into FILE COMMAND...: run in this shell with stdout in FILE
	local out=$1
	shift
	"$@" >"$out"
}

for f in parts.sh stage.sh check.sh test.sh; do
	check "bash -n $f" bash -n "$here/$f"
done

# shellcheck source=parts.sh
source "$here/parts.sh"

# Splitting: 1,000,003 random bytes into parts of at most 300,000.
head -c 1000003 /dev/urandom >"$tmp/blob"
mkdir "$tmp/parts"
split_parts "$tmp/parts/blob.xz" 300000 <"$tmp/blob"
sizes() { list_parts "$tmp/parts/blob.xz" | xargs stat -c %s | paste -sd' '; }
check "parts are at most 300000 bytes, in order" test "$(sizes)" = "300000 300000 300000 100003"
check "sha256 lists the 4 parts" test "$(wc -l <"$tmp/parts/blob.xz.sha256")" = 4
check "parts verify" verify_parts "$tmp/parts/blob.xz"
check "joined parts are the original" cmp -s <(join_parts "$tmp/parts/blob.xz") "$tmp/blob"

cp "$tmp/parts/blob.xz.02" "$tmp/part02"
rm "$tmp/parts/blob.xz.02"
check "a missing part fails verification" fails verify_parts "$tmp/parts/blob.xz"
printf 'x' | cat - "$tmp/part02" | head -c 300000 >"$tmp/parts/blob.xz.02"
check "a corrupt part fails verification" fails verify_parts "$tmp/parts/blob.xz"
cp "$tmp/part02" "$tmp/parts/blob.xz.02"
cp "$tmp/part02" "$tmp/parts/blob.xz.07"
check "an unexpected part fails verification" fails verify_parts "$tmp/parts/blob.xz"
rm "$tmp/parts/blob.xz.07"
check "restored parts verify" verify_parts "$tmp/parts/blob.xz"

# The same through xz, as stage.sh and check.sh use it.
mkdir "$tmp/xz"
xz -1 -c "$tmp/blob" | split_parts "$tmp/xz/p.tar.xz" 400000
check "xz stream round trip" cmp -s <(join_parts "$tmp/xz/p.tar.xz" | xz -dc) "$tmp/blob"

# Finding CUDA libraries in a fake wheel layout.
# shellcheck source=check.sh
source "$here/check.sh"
fake=$tmp/site/nvidia
mkdir -p "$fake/cu13/lib" "$fake/cudnn/lib" "$tmp/driver"
for so in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do : >"$fake/cu13/lib/$so"; done
: >"$fake/cudnn/lib/libcudnn.so.9"
: >"$tmp/driver/libcuda.so.1"
export CUDA_LIB_DIRS=$fake/cu13/lib:$fake/cudnn/lib:$tmp/driver
check "all libraries found" into "$tmp/found.txt" find_cuda_libs "$tmp/shim"
check "libcudnn.so link made" test "$(readlink "$tmp/shim/libcudnn.so")" = "$fake/cudnn/lib/libcudnn.so.9"
check "library path holds shim and folders" test "$CUDA_LD_PATH" = "$tmp/shim:$fake/cu13/lib:$fake/cudnn/lib:$tmp/driver"
rm "$fake/cu13/lib/libcublasLt.so.13"
: >"$fake/cu13/lib/libcublasLt.so.12"
check "a missing library is reported" fails into "$tmp/missing.txt" find_cuda_libs "$tmp/shim2"
check "the report names it and the version found" grep -q 'libcublasLt.so.13 *MISSING (other versions: .*libcublasLt.so.12' "$tmp/missing.txt"
check "candidates give sdgate flags" test "$(candidate plugin-1.29 /w)" = "--ort-lib /w/ort-1.29/libonnxruntime.so --ep-library /w/ort-1.29/libonnxruntime_providers_cuda.so"
check "unknown candidate refused" fails candidate nope /w

((failures == 0)) && echo "all passed" || { echo "$failures failed"; exit 1; }
