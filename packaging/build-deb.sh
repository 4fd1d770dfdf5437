#!/usr/bin/env bash
# Builds the skywire .deb and prints its path on stdout.
#
#   packaging/build-deb.sh [--profile NAME] [--no-build] [--output PATH] [cargo-deb args...]
#
# 1. `cargo build --profile NAME -p skywire` (release by default; skipped with --no-build),
# 2. man pages and shell completions from that binary (`skywire gen-docs`) into
#    <target dir>/<profile dir>/packaging/ (man pages gzipped, as Debian wants them),
# 3. `cargo deb --no-build --strip` with the same profile (metadata: [package.metadata.deb] in
#    cli/Cargo.toml). Other arguments (e.g. --fast, --deb-revision 2) go to cargo-deb.
#
# Honours CARGO_TARGET_DIR. Needs cargo-deb (`cargo install cargo-deb --locked`) and gzip.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
profile=release
build=1
output=""
deb_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs a value}; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --no-build) build=0; shift ;;
    --output|-o) output=${2:?--output needs a value}; shift 2 ;;
    --output=*) output=${1#--output=}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) deb_args+=("$1"); shift ;;
  esac
done

if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-deb: cargo-deb is missing (cargo install cargo-deb --locked)" >&2
  exit 1
fi

# Cargo's name for the dev profile's directory is "debug".
case "$profile" in
  dev|debug) profile=dev; profile_dir=debug ;;
  *) profile_dir=$profile ;;
esac

target_dir=${CARGO_TARGET_DIR:-}
if [ -z "$target_dir" ]; then
  target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
fi
[ -n "$target_dir" ] || { echo "build-deb: cannot find the cargo target directory" >&2; exit 1; }
case "$target_dir" in
  /*) ;;
  *) target_dir="$PWD/$target_dir" ;;
esac
export CARGO_TARGET_DIR="$target_dir"

if [ "$build" = 1 ]; then
  cargo build --locked --profile "$profile" -p skywire --manifest-path "$root/Cargo.toml" >&2
fi
bin="$target_dir/$profile_dir/skywire"
[ -x "$bin" ] || { echo "build-deb: $bin is missing (build it, or drop --no-build)" >&2; exit 1; }

docs="$target_dir/$profile_dir/packaging"
rm -rf "$docs"
"$bin" gen-docs --out "$docs"
gzip -9n "$docs"/man/*.1

[ -n "$output" ] || output="$target_dir/debian/"
# cargo-deb prints the path of the package it wrote on stdout. It reads some metadata paths
# relative to the current directory, so run it from the package's.
cd "$root/cli"
deb=$(cargo deb --manifest-path "$root/cli/Cargo.toml" --no-build --profile "$profile" --strip \
  --output "$output" ${deb_args[@]+"${deb_args[@]}"} | tail -n 1)
[ -f "$deb" ] || { echo "build-deb: cargo deb did not report a package (got: $deb)" >&2; exit 1; }
echo "$deb"
