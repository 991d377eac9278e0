#!/usr/bin/env bash
# Builds QEMU 10.0.2 (Debian's source) with the patches in qemu-patches/ against this
# repository's headers and spice-server.pc (`make lib`), as a small x86_64 system emulator
# (spice, qxl, std VGA, virtio-gpu, bochs, kvm, tcg, slirp), into build/qemu/bin/.
#
# The result is cached in $SPICE_RS_CACHE/qemu-<key> (default ~/.cache/spice-rs), the key
# being the source version, the patch series, this script and our headers, so a warm
# machine only hard-links it into place. Compiles go through ccache
# ($SPICE_RS_CACHE/ccache), so a rebuild after a patch change takes seconds, not minutes.
#
#   scripts/build-qemu.sh [DEST]     DEST defaults to build/qemu
#   JOBS=n                           parallel compile jobs (default: nproc)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/build/qemu}
cache=${SPICE_RS_CACHE:-$HOME/.cache/spice-rs}
jobs=${JOBS:-$(nproc)}

qemu_version=10.0.2
tarball=qemu_${qemu_version}+ds.orig.tar.xz
# Debian's orig tarball, as listed in the bookworm-backports Sources index.
tarball_sha256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
patches=$root/qemu-patches
pc_dir=$root/build/pkgconfig

die() { echo "build-qemu: $*" >&2; exit 1; }
log() { echo "build-qemu: $*" >&2; }

[ -f "$pc_dir/spice-server.pc" ] || die "no $pc_dir/spice-server.pc: run 'make lib' first"
for tool in meson ninja /usr/bin/python3 gcc pkg-config chrpath; do
    command -v "$tool" >/dev/null || die "$tool missing: run scripts/install-deps.sh"
done

series=()
while read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] && series+=("$line")
done <"$patches/series"

# Everything the compiled binary depends on besides the compiler and Debian's libraries.
key=$({
    echo "qemu $qemu_version $tarball_sha256"
    echo "spice-protocol $(pkg-config --modversion spice-protocol)"
    for p in "${series[@]}"; do echo "$p"; cat "$patches/$p"; done
    cat "$0" "$root"/include/spice-server/*.h "$pc_dir/spice-server.pc" |
        sed "s|$root|REPO|g"
} | sha256sum | cut -c1-16)
out=$cache/qemu-$qemu_version-$key

install_into_dest() {
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    cp -al "$out" "$dest" 2>/dev/null || cp -a "$out" "$dest"
    log "$dest/bin/qemu-system-x86_64 (cached in $out)"
}

if [ -x "$out/bin/qemu-system-x86_64" ]; then
    install_into_dest
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/qemu-build.lock"
flock 9   # one build at a time per cache
if [ -x "$out/bin/qemu-system-x86_64" ]; then install_into_dest; exit 0; fi

# The source: Debian's orig tarball through apt (deb-src for bookworm-backports is set up
# by scripts/install-deps.sh). Only the tarball: Debian's own patches are not needed.
src_tar=$cache/$tarball
if ! echo "$tarball_sha256  $src_tar" | sha256sum -c --status 2>/dev/null; then
    ver=$(apt-cache showsrc qemu | awk '/^Version: /{print $2}' |
        grep -F ":$qemu_version+" | sort -V | tail -n1 || true)
    [ -n "$ver" ] || die "apt knows no qemu $qemu_version source package (run scripts/install-deps.sh)"
    dl=$(mktemp -d)
    (cd "$dl" && apt-get source -qq --download-only --tar-only "qemu=$ver") ||
        die "apt-get source qemu=$ver failed"
    echo "$tarball_sha256  $dl/$tarball" | sha256sum -c --status ||
        die "$tarball: unexpected checksum"
    mv "$dl/$tarball" "$src_tar"
    rm -rf "$dl"
fi

work=$cache/qemu-work
rm -rf "$work"
mkdir -p "$work/build"
log "unpacking $tarball"
# roms/ holds firmware sources (270 MB) that an emulator-only build never reads.
tar -C "$work" -xf "$src_tar" --exclude="qemu-$qemu_version/roms"
src=$work/qemu-$qemu_version

# Debian's +ds tarball has no firmware blobs: skip unpacking the edk2 images that are not
# there (what Debian's skip-unpack-edk2-blobs patch does), and install no blobs at all.
sed -i 's/^if unpack_edk2_blobs$/if unpack_edk2_blobs and false/' "$src/pc-bios/meson.build"
grep -q '^if unpack_edk2_blobs and false$' "$src/pc-bios/meson.build" ||
    die "pc-bios/meson.build changed: cannot disable the edk2 blobs"

for p in "${series[@]}"; do
    log "applying $p"
    patch -d "$src" -p1 --batch --forward --quiet <"$patches/$p" || die "$p does not apply"
done

cc=gcc
if command -v ccache >/dev/null; then
    # configure writes the compiler into meson's cross file, so ccache must be named here.
    cc="ccache gcc"
    export CCACHE_DIR=$cache/ccache CCACHE_BASEDIR=$work CCACHE_MAXSIZE=2G
    # Generated headers are always newer than the build start; let direct mode hit anyway.
    export CCACHE_SLOPPINESS=include_file_mtime,include_file_ctime
fi

export PKG_CONFIG_PATH=$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
cd "$work/build"
log "configuring (spice-server from $pc_dir)"
"$src/configure" --prefix=/usr/local --python=/usr/bin/python3 --cc="$cc" \
    --target-list=x86_64-softmmu --without-default-features \
    --disable-install-blobs --disable-download \
    --enable-kvm --enable-slirp --enable-pixman --enable-spice --enable-spice-protocol \
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
    >configure.log 2>&1 || { tail -n 30 configure.log >&2; die "configure failed ($work/build/configure.log)"; }
grep -q -- "-I$root/include/spice-server" build.ninja ||
    die "meson did not pick up $pc_dir/spice-server.pc"

log "building qemu-system-x86_64 with $jobs jobs"
ninja -j"$jobs" qemu-system-x86_64 >ninja.log 2>&1 ||
    { tail -n 40 ninja.log >&2; die "build failed ($work/build/ninja.log)"; }

rm -rf "$out.tmp"
mkdir -p "$out.tmp/bin"
cp qemu-system-x86_64 "$out.tmp/bin/"
# meson links with a RUNPATH to this clone's build/lib; drop it so that the binary loads
# whichever libspice-server.so.1 LD_LIBRARY_PATH names (Debian's C one by default).
chrpath -d "$out.tmp/bin/qemu-system-x86_64" >/dev/null
! readelf -d "$out.tmp/bin/qemu-system-x86_64" | grep -qE 'RPATH|RUNPATH' ||
    die "could not remove the build RUNPATH"
mv "$out.tmp" "$out"
cd /
rm -rf "$work"
for old in "$cache"/qemu-"$qemu_version"-*; do
    [ "$old" = "$out" ] || rm -rf "$old"
done
install_into_dest
