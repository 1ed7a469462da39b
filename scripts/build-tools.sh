#!/usr/bin/env bash
# Builds the Go tools the tests run, once, into $INFLOW_TOOLS/bin (default
# $HOME/.cache/inflow-tools/bin), each from its published Go module through the
# Go module proxy; a tool already built at its pinned version is reused.
#
#   scripts/build-tools.sh        prints the bin directory on its last line
#
# Tools (and why this version): Telegraf v1.39.2, the newest the proxy serves,
# which has outputs.influxdb_v3 (1.38+).
set -euo pipefail
tools="${INFLOW_TOOLS:-$HOME/.cache/inflow-tools}"
mkdir -p "$tools/bin" "$tools/src"
export GOFLAGS=-mod=mod GOMAXPROCS="${GOMAXPROCS:-2}"

# build NAME VERSION PACKAGE: go install PACKAGE@VERSION as bin/NAME-VERSION.
build() {
    local name=$1 version=$2 package=$3
    local target="$tools/bin/$name-$version"
    if [ -x "$target" ]; then
        return 0
    fi
    echo "building $name $version (once; several minutes)" >&2
    local scratch
    scratch=$(mktemp -d "$tools/src/$name.XXXXXX")
    (cd "$scratch" && GOBIN="$scratch/bin" go install "$package@$version") >&2
    mv "$scratch/bin/$(basename "$package")" "$target"
    rm -rf "$scratch"
}

build telegraf v1.39.2 github.com/influxdata/telegraf/cmd/telegraf
echo "$tools/bin"
