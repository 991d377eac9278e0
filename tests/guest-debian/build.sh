#!/usr/bin/env bash
# Builds the Debian test guest: a bookworm userland (debootstrap from the mirror this machine's
# apt sources name) that boots straight into Xorg on the qxl device with the real SPICE guest
# agent (spice-vdagentd + spice-vdagent) running for a user session, no display manager.
#   OUTDIR/vmlinuz     Debian's kernel (the one linux-image-amd64 depends on)
#   OUTDIR/initrd.img  busybox initramfs: virtio-blk + ext4, mounts /dev/vda, runs /sbin/spice-rs-init
#   OUTDIR/root.img    ext4 root disk (raw); QEMU must open it with snapshot=on (never written)
# Tests reach the guest through the virtio port org.spice-rs.cmd (spice-rs-cmd, tests/e2e/guest.py).
# Built once into a cache dir keyed on this script, its files and the kernel's version; OUTDIR
# gets symlinks, so a warm machine does no work. Needs root (debootstrap, chroot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/modules.sh
. "$here/../guest/modules.sh"
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

SUITE=bookworm
# The agent and its X session; xclip, xrandr (x11-xserver-utils) and xdotool are what the
# command port's scripts use to read the clipboard, the mode and the pointer. alsa-utils:
# aplay, arecord and amixer for the sound tests (their signals come from perl, in perl-base).
PKGS=(spice-vdagent xserver-xorg-core xserver-xorg-video-qxl xserver-xorg-input-libinput
      xclip x11-xserver-utils x11-utils xdotool dbus dbus-x11 udev kmod procps alsa-utils)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "guest-debian: cannot resolve the kernel package (apt-get update?)" >&2; exit 1; }
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')

key=$(cat "$here/build.sh" "$here/../guest/modules.sh" "$here/initramfs-init" "$here/spice-rs-init" "$here/spice-rs-cmd" "$here/spice-rs-follow-mode" | sha256sum | cut -c1-12)
key="$key-$(echo "$SUITE $kpkg $kver" | sha256sum | cut -c1-8)"
cache_root="${SPICE_RS_CACHE:-$HOME/.cache/spice-rs}"
cache="$cache_root/guest-debian-$key"

link_out() {
    for f in vmlinuz initrd.img root.img; do ln -sfn "$cache/$f" "$out/$f"; done
    echo "guest-debian: $out (cache $cache)"
}
if [ -f "$cache/done" ]; then link_out; exit 0; fi

# One build at a time (two test runs may start together); the second one finds it done.
mkdir -p "$cache_root"
exec 9>"$cache_root/guest-debian.lock"
flock 9
if [ -f "$cache/done" ]; then link_out; exit 0; fi

for tool in debootstrap mke2fs busybox cpio; do
    command -v "$tool" >/dev/null || { echo "guest-debian: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done

# The Debian mirror already configured on this machine (never a host written here).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror=$(awk '/^URIs:/ {print $2}' "$f" | grep -v -- '-security' | head -n1 || true)
    [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "guest-debian: no Debian mirror in the apt sources" >&2; exit 1; }

work=$(mktemp -d)
trap '$SUDO rm -rf "$work"' EXIT
mkdir -p "$cache"
cd "$work"
t0=$SECONDS

# --- userland ------------------------------------------------------------------------
echo "guest-debian: debootstrap $SUITE from $mirror (${PKGS[*]})"
root=$work/root
if ! $SUDO debootstrap --variant=minbase --include="$(IFS=,; echo "${PKGS[*]}")" \
        "$SUITE" "$root" "$mirror" >debootstrap.log 2>&1; then
    tail -n 30 debootstrap.log >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    echo "guest-debian: debootstrap failed" >&2
    exit 1
fi
echo "guest-debian: userland in $((SECONDS - t0)) s"

# --- kernel and its modules ------------------------------------------------------------
echo "guest-debian: fetching $kpkg $kver"
apt-get download -q "$kpkg" >/dev/null 2>&1 || apt-get download "$kpkg"
dpkg-deb -x "$kpkg"_*.deb k
kmodver=$(ls k/lib/modules | head -n1)
cp k/boot/vmlinuz-* "$cache/vmlinuz.tmp"
$SUDO mkdir -p "$root/lib/modules"
$SUDO cp -a "k/lib/modules/$kmodver" "$root/lib/modules/"
$SUDO chroot "$root" depmod "$kmodver"

# --- the test user and the boot scripts ------------------------------------------------
$SUDO chroot "$root" useradd -m -u 1000 -s /bin/sh -G audio,video,input user
$SUDO install -d -o 1000 -g 1000 "$root/home/user/Downloads"
$SUDO install -m755 "$here/spice-rs-init" "$root/sbin/spice-rs-init"
$SUDO install -m755 "$here/spice-rs-cmd" "$root/usr/local/bin/spice-rs-cmd"
$SUDO install -m755 "$here/spice-rs-follow-mode" "$root/usr/local/bin/spice-rs-follow-mode"
echo spice-rs-guest | $SUDO tee "$root/etc/hostname" >/dev/null
# What the guest has, by version (the `done` file lists it).
$SUDO chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' "${PKGS[@]}" > versions.txt
# Nothing the tests read: package caches, documentation, translations.
$SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale "$root"/usr/share/info

# --- root disk: ext4 filled from the tree (no loop device), room for received files ------
mb=$($SUDO du -sm "$root" | cut -f1)
size=$((mb * 12 / 10 + 512))
$SUDO mke2fs -q -t ext4 -L spice-rs-root -d "$root" "$cache/root.img.tmp" "${size}M"
echo "guest-debian: root.img ${size} MiB"

# --- initramfs: busybox and the modules that reach the root disk ---------------------------
kmods=k/lib/modules/$kmodver
ir=$work/initramfs
mkdir -p "$ir"/{bin,proc,sys,dev,newroot}
declare -A want=()
# The guest's depmod already wrote modules.dep (paths relative to the modules dir).
add_modules "$root/lib/modules/$kmodver" virtio_pci virtio_blk crc32c_generic ext4
copy_modules "$kmods" "$ir/lib/modules/$kmodver"
busybox depmod -b "$ir" "$kmodver"
install_busybox "$ir"
install -m755 "$here/initramfs-init" "$ir/init"
(cd "$ir" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) > "$cache/initrd.img.tmp"

mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
mv "$cache/initrd.img.tmp" "$cache/initrd.img"
mv "$cache/root.img.tmp" "$cache/root.img"
{ echo "$kpkg $kver"; cat versions.txt; } > "$cache/done"
echo "guest-debian: built in $((SECONDS - t0)) s"
link_out
