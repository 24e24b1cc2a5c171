#!/usr/bin/env bash
# Compares our tree patch (ota patch create) with zstd -19 --long=31 --patch-from on
# tars of the same trees, on real published web builds fetched with `npm pack`.
# Each tarball is pinned by version and sha512 integrity, so a rerun measures the same
# bytes or stops. Downloads about 25 MB once into .bench-data/npm (reused after).
#
#   bash infra/bench/patch-vs-zstd.sh        # or: BENCH_PAIRS=1 make bench
set -euo pipefail

cd "$(dirname "$0")/../.."
work=${BENCH_DIR:-.bench-data}
zstd=${ZSTD:-zstd}
export LC_ALL=C.UTF-8 # ${#name} counts characters (the arrows) for the table
cache=$work/npm

# name | package | old version | old integrity | new version | new integrity | bundle folder
pairs=(
	"three 0.185.0→0.185.1|three|0.185.0|sha512-+yRrcRO2iZa8uzvNNl0d7cL4huhgKgBvVJ0njcTe8xFqZ6DMAFZdCKDP91SEAuj25bNAj7k1QQdf+srZywVK6w==|0.185.1|sha512-5aojFCXKwnjBRZvUnt3WFfEcvUJgkN5LlijRFN95hMy8WVkG4I0QNcJE+OuWvuJ0bOdStrbfXn0pkd6/QyiAlg==|build"
	"@nuxt/devtools 3.4.0→3.4.1|@nuxt/devtools|3.4.0|sha512-hOOpXnNyGf03ac0TIqZQK5ErlX2zTB6nPcf6SxLBG9IW/oCECM5JQEgI4EyqDLE2VjkXaalOUdl0BwtL2XuEMw==|3.4.1|sha512-20zZs6k/zAdi+PM7s1BwxE3hanZ+R1OGi5DWCKPyzSnhUUeeNebvWNgec7Rwnx6iKLkJfK4WFIZ+FL2QurG/ZQ==|dist/client"
	"@ionic/core 8.8.17→8.8.18|@ionic/core|8.8.17|sha512-w4Ya+0EpGqajVbp6c6TMt4u/MX1flmdzpz2gfgXUkRgp/YfFIRw8n6pIZEOv4EzdUzrhhvPVUEZR64w9R5Fguw==|8.8.18|sha512-QRFqi6gMSTk89FMjtoDx3p6e2dD7mYxqYzS0+Hl+yjxnoWoNFluWKM9rnGEEkdvpY7bF1pt6CI5IwMt+vjYQWg==|dist"
	"bootstrap-icons 1.12.1→1.13.0|bootstrap-icons|1.12.1|sha512-ekwupjsteHQmgGV+haQ0nNMoSyKCbJj5ou+06vFzb9uR2/bwN9isNEgXBaQzcT+fLzhKS3OaBNpwz8XdZlIgYQ==|1.13.0|sha512-GrQFQHRK2ZPeid7niIAaQb0bJhWB0P8aHAztp9dN+p+4eIX/DJxahLlt0jhov1ZSGfvF++LrltUmUC/eQ/B67A==|."
)

for tool in npm tar go; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
# Without zstd the comparison has no baseline: say how to get it and skip.
if ! command -v "$zstd" >/dev/null; then
	echo "bench: zstd not found, skipping the patch comparison (Debian/Ubuntu: apt-get install zstd)" >&2
	exit 0
fi

mkdir -p "$cache"
ota=$work/bin/ota
go build -o "$ota" ./cmd/ota

# fetch PKG VERSION INTEGRITY prints the folder the pinned tarball is unpacked in.
fetch() {
	local pkg=$1 ver=$2 want=$3
	local dir=$cache/${pkg//\//+}@$ver
	if [ ! -f "$dir/.ok" ]; then
		rm -rf "$dir" && mkdir -p "$dir"
		local tgz
		tgz=$(cd "$dir" && npm pack --silent "$pkg@$ver" | tail -1)
		local got="sha512-$(openssl dgst -sha512 -binary "$dir/$tgz" | base64 -w0)"
		if [ "$got" != "$want" ]; then
			echo "bench: $pkg@$ver integrity $got, pinned $want: refusing to measure other bytes" >&2
			exit 1
		fi
		tar -xzf "$dir/$tgz" -C "$dir"
		touch "$dir/.ok"
	fi
	echo "$dir/package"
}

# tarball TREE OUT: a reproducible tar of a tree (sorted, no times or owners).
tarball() {
	tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$2" .
}

seconds() { date +%s.%N; }

printf '| %-32s | %12s | %22s | %6s | %8s | %8s |\n' pair "ours (bytes)" "zstd -19 --patch-from" ratio "create s" "zstd s"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..13}):" "$(printf -- '-%.0s' {1..23}):" "$(printf -- '-%.0s' {1..7}):" "$(printf -- '-%.0s' {1..9}):" "$(printf -- '-%.0s' {1..9}):"
ratios=()
for p in "${pairs[@]}"; do
	IFS='|' read -r name pkg v1 i1 v2 i2 sub <<<"$p"
	old=$(fetch "$pkg" "$v1" "$i1")/$sub
	new=$(fetch "$pkg" "$v2" "$i2")/$sub
	out=$work/out/${pkg//\//+}
	rm -rf "$out" && mkdir -p "$out"

	t0=$(seconds)
	"$ota" patch create --from "$old" --to "$new" --out "$out/ours.patch" -q
	t1=$(seconds)
	# Apply and compare, so a small patch is also a correct one.
	"$ota" patch apply --from "$old" --patch "$out/ours.patch" --out "$out/applied" >/dev/null 2>&1
	diff -r "$new" "$out/applied" >/dev/null || { echo "bench: $name: applied tree differs from the new one" >&2; exit 1; }

	tarball "$old" "$out/old.tar"
	tarball "$new" "$out/new.tar"
	t2=$(seconds)
	# zstd prints tuning notes on stderr for --patch-from; shown only when it fails.
	"$zstd" -q -f -19 --long=31 --patch-from="$out/old.tar" "$out/new.tar" -o "$out/new.tar.zst" 2>"$out/zstd.log" ||
		{ cat "$out/zstd.log" >&2; exit 1; }
	t3=$(seconds)

	ours=$(stat -c %s "$out/ours.patch")
	z=$(stat -c %s "$out/new.tar.zst")
	ratio=$(awk -v a="$ours" -v b="$z" 'BEGIN{printf "%.3f", a/b}')
	ratios+=("$ratio")
	printf '| %s%*s | %12s | %22s | %6s | %8.1f | %8.1f |\n' "$name" $((32 - ${#name})) '' "$ours" "$z" "$ratio" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$(awk -v a="$t2" -v b="$t3" 'BEGIN{print b-a}')"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END{if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}')
echo
echo "median ratio (ours / zstd): $median over ${#ratios[@]} pairs; ratio < 1 means our patch is smaller"
