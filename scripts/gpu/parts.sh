# Split a stream into numbered parts of at most N bytes and join them again.
# Sourced by stage.sh (split), check.sh (join) and test.sh. The device tool
# carries at most 64 MiB per call, the working tree included, hence parts of
# 55 MB.

PART_BYTES_DEFAULT=55000000

# split_parts PREFIX BYTES: stdin -> PREFIX.00, PREFIX.01, ... of at most
# BYTES each, plus PREFIX.sha256 holding every part's checksum.
split_parts() {
	local prefix=$1 bytes=$2
	rm -f "$prefix".[0-9][0-9] "$prefix".sha256
	split --bytes="$bytes" --numeric-suffixes=0 --suffix-length=2 - "$prefix".
	(cd "$(dirname "$prefix")" && sha256sum "$(basename "$prefix")".[0-9][0-9]) >"$prefix".sha256
}

# list_parts PREFIX: the parts in order, one per line.
list_parts() {
	local p
	for p in "$1".[0-9][0-9]; do
		[[ -e $p ]] && printf '%s\n' "$p"
	done
}

# verify_parts PREFIX: every part named in PREFIX.sha256 is there and intact,
# and no part is there that it does not name.
verify_parts() {
	local prefix=$1 dir listed found
	dir=$(dirname "$prefix")
	[[ -f $prefix.sha256 ]] || { echo "missing $prefix.sha256 (it travels with the first part)" >&2; return 1; }
	listed=$(awk '{print $2}' "$prefix.sha256" | sort)
	found=$(list_parts "$prefix" | xargs -r -n1 basename | sort)
	if [[ $listed != "$found" ]]; then
		echo "parts in $dir do not match $prefix.sha256:" >&2
		diff <(echo "$listed") <(echo "$found") | sed 's/^</  missing:/; s/^>/  unexpected:/' | grep -E 'missing|unexpected' >&2
		return 1
	fi
	(cd "$dir" && sha256sum --quiet -c "$(basename "$prefix").sha256")
}

# join_parts PREFIX: the parts, in order, on stdout.
join_parts() {
	local parts
	mapfile -t parts < <(list_parts "$1")
	((${#parts[@]} > 0)) || { echo "no parts $1.NN" >&2; return 1; }
	cat "${parts[@]}"
}
