#!/usr/bin/env bash
# Assembles Inflow's image as an OCI layout, without a Docker daemon: the
# same content as the Dockerfile's (every binary, CA certificates, a non-root
# user 10001, `inflow serve` as the command) on a root file system made of
# the binaries, the shared libraries they load and the Python standard
# library the processing engine embeds, packed by Debian's umoci.
#
#   scripts/image.sh OUT [PROFILE]    OUT/oci is the layout (tag `inflow`);
#                                     PROFILE: debug (default) or release
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/image.sh OUT [debug|release]}
profile=${2:-debug}
target="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}/$profile"
bins=(inflow inflow-ingester inflow-querier inflow-compactor inflow-operator)

if ! command -v umoci >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq umoci >/dev/null
fi
for b in "${bins[@]}"; do
    [ -x "$target/$b" ] || { echo "missing $target/$b: build the workspace's binaries first" >&2; exit 1; }
done

rm -rf "$out" && mkdir -p "$out"
rootfs=$(mktemp -d)
chmod 0755 "$rootfs"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{usr/local/bin,etc/ssl/certs,var/lib/inflow,tmp}
chmod 1777 "$rootfs/tmp"
for b in "${bins[@]}"; do
    install -m 0755 "$target/$b" "$rootfs/usr/local/bin/$b"
done
# The shared libraries the binaries load (glibc, libm, libgcc_s, the loader).
for lib in $(for b in "${bins[@]}"; do ldd "$target/$b"; done | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
# The Python the processing engine embeds, where the binaries look for it
# (the build's prefix): its standard library without tests, GUI modules and
# site-packages (plugins' packages go into the plugin venv), and the
# interpreter that makes that venv (with ensurepip's bundled pip).
libpython=$(ldd "$target/inflow" | grep -o '/[^ ]*libpython[^ ]*' | head -n 1)
if [ -n "$libpython" ]; then
    prefix=$(dirname "$(dirname "$libpython")")
    version=$(basename "$libpython" | sed -n 's/^libpython\([0-9]*\.[0-9]*\).*/\1/p')
    mkdir -p "$rootfs$prefix/lib" "$rootfs$prefix/bin"
    tar -C "$prefix/lib" -cf - \
        --exclude="python$version/test" --exclude="python$version/site-packages" \
        --exclude="python$version/idlelib" --exclude="python$version/tkinter" \
        --exclude="python$version/turtledemo" --exclude='__pycache__' \
        "python$version" | tar -C "$rootfs$prefix/lib" -xf -
    mkdir -p "$rootfs$prefix/lib/python$version/site-packages"
    cp -L "$prefix/bin/python$version" "$rootfs$prefix/bin/python$version"
    ln -sf "python$version" "$rootfs$prefix/bin/python3"
    chmod -R a+rX "$rootfs${prefix%%/lib*}"
    # Every directory down to the prefix must be searchable by user 10001.
    dir="$prefix"
    while [ "$dir" != "/" ]; do chmod a+rx "$rootfs$dir"; dir=$(dirname "$dir"); done
fi
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\ninflow:x:10001:10001:inflow:/var/lib/inflow:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\ninflow:x:10001:\n' > "$rootfs/etc/group"
chown -R 10001:10001 "$rootfs/var/lib/inflow"

umoci init --layout "$out/oci"
umoci new --image "$out/oci:inflow"
bundle="$out/bundle"
umoci unpack --image "$out/oci:inflow" "$bundle" >/dev/null
cp -a "$rootfs/." "$bundle/rootfs/"
umoci repack --image "$out/oci:inflow" "$bundle"
rm -rf "$bundle"
umoci config --image "$out/oci:inflow" \
    --config.user 10001:10001 \
    --config.workingdir /var/lib/inflow \
    --config.exposedports 8181/tcp \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.cmd inflow --config.cmd serve --config.cmd --http-bind --config.cmd 0.0.0.0:8181 \
    --config.cmd --data-dir --config.cmd /var/lib/inflow \
    --author "Inflow" \
    --config.label org.opencontainers.image.source=https://github.com/inflow-dev/inflow
echo "$out/oci"
