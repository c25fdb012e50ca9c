#!/usr/bin/env bash
# The GPU check, run on the GPU host from the repo root:
#
#   scripts/gpu/check.sh [--preset sd15|sdxl] PARTS_DIR [WORK_DIR]
#
# --preset sdxl measures SDXL base-sized fp16 weights at 1024x1024 instead
# of SD 1.5's at 512x512 (writing them takes a few minutes and ~5.2 GB).
#
# PARTS_DIR holds the parts stage.sh wrote (sdgate-gpu.tar.xz.NN and
# sdgate-gpu.tar.xz.sha256), gathered there one device call at a time
# (docs/performance.md lists the calls). The script verifies and unpacks
# them into WORK_DIR (default PARTS_DIR/work), finds the CUDA 13 and cuDNN 9
# libraries already on the host, writes the synthetic models, finds which
# ONNX Runtime set-up runs on the GPU with a tiny model, then runs
# `sdgate gpucheck` on SD 1.5-sized fp16 weights at 512x512 and prints the
# figures with nvidia-smi's view of memory. It never installs anything.
#
# Env: CANDIDATES  set-ups to try, in order (default: plugin-1.29 plugin-1.30 builtin-1.30)
#      CUDA_LIB_DIRS  extra folders to search first, ':'-separated
#      GPUCHECK_ARGS  extra arguments for the sd15 run (e.g. --cuda-conv-algo HEURISTIC)
#      FUSED       1 (default) also times the sd15 model written with
#                  --attention fused (com.microsoft MultiHeadAttention:
#                  CUDA's flash / memory-efficient kernels); 0 skips it
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=parts.sh
source "$here/parts.sh"

# The sonames libonnxruntime_providers_cuda.so (ONNX Runtime 1.29, CUDA 13)
# loads; libcudnn.so.9 is opened by the unversioned name libcudnn.so.
CUDA_SONAMES=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9 libcuda.so.1)

step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }

# library_dirs: folders that may hold CUDA libraries, most specific first:
# CUDA_LIB_DIRS, the nvidia-* Python wheels' lib folders, CUDA toolkits,
# the system's library folders.
library_dirs() {
	local d sp
	local -a sites=()
	if [[ -n ${CUDA_LIB_DIRS:-} ]]; then
		tr ':' '\n' <<<"$CUDA_LIB_DIRS"
	fi
	for py in python3 python; do
		command -v "$py" >/dev/null 2>&1 || continue
		mapfile -t -O "${#sites[@]}" sites < <("$py" -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
	done
	sites+=(/usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages /usr/lib/python3/dist-packages
		/opt/conda/lib/python3*/site-packages /opt/*/lib/python3*/site-packages "$HOME"/.local/lib/python3*/site-packages
		/venv*/lib/python3*/site-packages /workspace/*/lib/python3*/site-packages)
	for sp in "${sites[@]}"; do
		for d in "$sp"/nvidia/*/lib "$sp"/nvidia/*/lib64 "$sp"/nvidia/cu13/lib/x86_64-linux-gnu; do
			[[ -d $d ]] && printf '%s\n' "$d"
		done
	done
	for d in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
		/usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64; do
		[[ -d $d ]] && printf '%s\n' "$d"
	done
	return 0
}

# locate SONAME DIR...: the first DIR/SONAME that exists, else ldconfig's.
locate() {
	local so=$1 d
	shift
	for d in "$@"; do
		if [[ -e $d/$so ]]; then
			printf '%s\n' "$d/$so"
			return 0
		fi
	done
	ldconfig -p 2>/dev/null | awk -v so="$so" '$1 == so { print $NF; exit }'
}

# find_cuda_libs SHIM_DIR: prints where each needed library is, sets
# CUDA_LD_PATH to the folders that hold them (SHIM_DIR first, holding a
# libcudnn.so link when only libcudnn.so.9 exists) and returns 1 when one
# is missing.
find_cuda_libs() {
	local shim=$1 so path others missing=0
	local -a dirs=() found=()
	mapfile -t dirs < <(library_dirs | awk '!seen[$0]++')
	mkdir -p "$shim"
	for so in "${CUDA_SONAMES[@]}"; do
		path=$(locate "$so" "${dirs[@]}")
		if [[ -z $path ]]; then
			others=$(for d in "${dirs[@]}"; do ls "$d/${so%%.so*}".so.* 2>/dev/null; done | head -3 | tr '\n' ' ')
			printf '  %-20s MISSING%s\n' "$so" "${others:+ (other versions: $others)}"
			missing=1
			continue
		fi
		printf '  %-20s %s\n' "$so" "$path"
		found+=("$(dirname "$path")")
		if [[ $so == libcudnn.so.9 && ! -e $(dirname "$path")/libcudnn.so ]]; then
			ln -sfn "$path" "$shim/libcudnn.so"
			printf '  %-20s %s -> %s\n' libcudnn.so "$shim/libcudnn.so" "$path"
		fi
	done
	CUDA_LD_PATH=$(printf '%s\n' "$shim" "${found[@]}" | awk '!seen[$0]++' | paste -sd:)
	return "$missing"
}

# unpack PARTS_DIR WORK_DIR: verify and unpack, skipped when WORK_DIR
# already holds these exact parts.
unpack() {
	local parts=$1 work=$2 prefix=$1/sdgate-gpu.tar.xz
	verify_parts "$prefix"
	if [[ -f $work/.parts.sha256 ]] && cmp -s "$prefix.sha256" "$work/.parts.sha256"; then
		echo "already unpacked in $work"
		return 0
	fi
	rm -rf "$work/bin" "$work/ort-1.29" "$work/ort-1.30"
	mkdir -p "$work"
	join_parts "$prefix" | xz -dc | tar -x -C "$work"
	cp "$prefix.sha256" "$work/.parts.sha256"
	head -1 "$work/MANIFEST"
}

# save_results WORK: the logs and figures into $OUT when the device tool
# set one (what is written there comes back with the call's answer).
save_results() {
	local work=$1
	[[ -n ${OUT:-} && -d ${OUT:-} && -w ${OUT:-} ]] || return 0
	cp "$work"/probe-*.log "$work"/gpucheck-sd15*.txt "$work"/check.log "$OUT"/ 2>/dev/null || true
}

# candidate NAME WORK: the sdgate flags of one ONNX Runtime set-up.
candidate() {
	local w=$2
	case $1 in
	plugin-1.29) echo "--ort-lib $w/ort-1.29/libonnxruntime.so --ep-library $w/ort-1.29/libonnxruntime_providers_cuda.so" ;;
	plugin-1.30) echo "--ort-lib $w/ort-1.30/libonnxruntime.so --ep-library $w/ort-1.30/libonnxruntime_providers_cuda.so" ;;
	builtin-1.30) echo "--ort-lib $w/ort-1.30/libonnxruntime.so" ;;
	*) return 1 ;;
	esac
}

main() {
	local preset=sd15
	if [[ ${1:-} == --preset ]]; then
		preset=${2:-}
		shift 2 || true
	fi
	[[ $preset == sd15 || $preset == sdxl ]] || { echo "--preset: sd15 or sdxl, not '$preset'" >&2; exit 2; }
	(($# >= 1)) || { echo "usage: scripts/gpu/check.sh [--preset sd15|sdxl] PARTS_DIR [WORK_DIR]" >&2; exit 2; }
	local parts work sdgate name flags rc chosen=""
	parts=$(cd "$1" && pwd)
	work=${2:-$parts/work}
	mkdir -p "$work"
	work=$(cd "$work" && pwd)
	exec > >(tee "$work/check.log") 2>&1
	trap 'save_results "$work"' EXIT

	step "unpack $parts -> $work"
	unpack "$parts" "$work"
	sdgate=$work/bin/sdgate

	step "host"
	uname -srm
	ldd --version 2>&1 | head -1
	if ! "$sdgate" version --ort-lib "$work/ort-1.29/libonnxruntime.so"; then
		echo "bin/sdgate does not run on this host (it needs glibc 2.34 or newer; see ldd --version above)"
		exit 1
	fi
	if command -v nvidia-smi >/dev/null; then
		nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv || echo "nvidia-smi failed"
	else
		echo "no nvidia-smi on PATH"
	fi

	step "CUDA 13 / cuDNN 9 libraries"
	if ! find_cuda_libs "$work/shim"; then
		echo "some libraries are missing: the CUDA provider will not load (set CUDA_LIB_DIRS to where they are)"
	fi
	export LD_LIBRARY_PATH=$CUDA_LD_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
	echo "ldd of the provider, what is not found:"
	ldd "$work/ort-1.29/libonnxruntime_providers_cuda.so" | grep 'not found' || echo "  nothing"

	step "which ONNX Runtime set-up runs on cuda:0 (tiny model)"
	[[ -f $work/tiny/model_index.json ]] || "$sdgate" synth --preset tiny --out "$work/tiny" >/dev/null 2>&1
	for name in ${CANDIDATES:-plugin-1.29 plugin-1.30 builtin-1.30}; do
		flags=$(candidate "$name" "$work") || { echo "unknown candidate $name"; continue; }
		rc=0
		# shellcheck disable=SC2086 # flags are words
		timeout 180 "$sdgate" gpucheck --model "$work/tiny" --device cuda:0 $flags \
			--size 64x64 --steps 2 --bench-steps 2 --runs 1 >"$work/probe-$name.log" 2>&1 || rc=$?
		if ((rc == 0)); then
			echo "$name: works ($(grep -m1 '^provider' "$work/probe-$name.log"))"
			chosen=$name
			break
		fi
		echo "$name: failed (exit $rc), last lines of $work/probe-$name.log:"
		tail -4 "$work/probe-$name.log" | cut -c1-600 | sed 's/^/    /'
	done
	if [[ -z $chosen ]]; then
		echo "no set-up ran on the GPU; the logs above say why"
		exit 1
	fi

	if [[ $preset == sdxl ]]; then
		step "sdxl fp16 model"
		[[ -f $work/sdxl/model_index.json ]] || "$sdgate" synth --preset sdxl --fp16 --out "$work/sdxl"

		step "gpucheck: sdxl fp16, 1024x1024, $chosen"
		flags=$(candidate "$chosen" "$work")
		# shellcheck disable=SC2086 # flags are words
		timeout 540 "$sdgate" gpucheck --model "$work/sdxl" --device cuda:0 $flags --size 1024x1024 \
			--steps 30 --bench-steps 6 --runs 1 ${GPUCHECK_ARGS:-} 2>&1 | tee "$work/gpucheck-sdxl.txt"
	else
		step "sd15 fp16 model"
		[[ -f $work/sd15/model_index.json ]] || "$sdgate" synth --preset sd15 --fp16 --out "$work/sd15"

		step "gpucheck: sd15 fp16, 512x512, $chosen"
		flags=$(candidate "$chosen" "$work")
		# shellcheck disable=SC2086 # flags are words
		timeout 420 "$sdgate" gpucheck --model "$work/sd15" --device cuda:0 $flags --size 512x512 \
			--steps 20,50 --bench-steps 10 --runs 2 --batch 1,2,4,8 ${GPUCHECK_ARGS:-} 2>&1 | tee "$work/gpucheck-sd15.txt"
		if [[ ${FUSED:-1} == 1 ]]; then
			# The same weights (same seed) as one fused attention op: compare
			# its UNet step time with the plain graph's above.
			step "gpucheck: sd15 fp16 --attention fused, 512x512, $chosen"
			[[ -f $work/sd15-fused/model_index.json ]] || "$sdgate" synth --preset sd15 --fp16 --attention fused --out "$work/sd15-fused"
			# shellcheck disable=SC2086 # flags are words
			timeout 300 "$sdgate" gpucheck --model "$work/sd15-fused" --device cuda:0 $flags --size 512x512 \
				--steps 20 --bench-steps 10 --runs 2 ${GPUCHECK_ARGS:-} 2>&1 | tee "$work/gpucheck-sd15-fused.txt"
		fi
	fi

	step "nvidia-smi"
	command -v nvidia-smi >/dev/null && nvidia-smi || true
	step "done"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
