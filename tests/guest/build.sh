#!/usr/bin/env bash
# Builds a tiny bootable test guest from Debian packages only:
#   OUTDIR/vmlinuz     the kernel linux-image-amd64 depends on (apt-get download, dpkg-deb -x)
#   OUTDIR/initrd.img  gzip cpio: busybox-static, /init, the display/input modules, workload
#   OUTDIR/video.img   raw disk (virtio-blk) holding the decoded video clip (see workload.c):
#                      Megamind (opencv-doc), the default clip
#   OUTDIR/video-street.img  a fixed camera on a street, people walking (opencv-doc vtest.avi)
#   OUTDIR/video-screen.img  a screen recording: typing in an editor, a pointer (clipgen.c)
#   OUTDIR/video-anim.img    an animation: flat colours, sharp edges (clipgen.c)
#   The rig attaches every clip disk; the guest plays the one clip=NAME names.
# Everything is built once into a cache dir keyed on the inputs; OUTDIR gets symlinks,
# so a warm machine does no work.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=modules.sh
. "$here/modules.sh"
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Video clip parameters (frames are decoded on the host, raw BGR, into video*.img).
OCV=usr/share/doc/opencv-doc/examples/data
VW=640 VH=360 VFRAMES=240
CLIPS="megamind street screen anim"

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build.sh: cannot resolve the kernel package (apt-get update?)" >&2; exit 1; }
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
bbver=$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null || echo none)

key=$(cat "$here/build.sh" "$here/modules.sh" "$here/workload.c" "$here/clipgen.c" "$here/init" | sha256sum | cut -c1-12)
key="$key-$(echo "$kpkg $kver $bbver $VW $VH $VFRAMES" | sha256sum | cut -c1-8)"
cache="${SPICE_RS_CACHE:-$HOME/.cache/spice-rs}/guest-$key"

link_out() {
    for f in vmlinuz initrd.img video.img video-street.img video-screen.img video-anim.img; do
        [ -e "$cache/$f" ] && ln -sfn "$cache/$f" "$out/$f"
    done
    echo "guest: $out (cache $cache)"
}
if [ -f "$cache/done" ]; then link_out; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"
cd "$work"

# --- kernel + modules -------------------------------------------------------
echo "guest: fetching $kpkg $kver"
apt-get download -q "$kpkg" >/dev/null 2>&1 || apt-get download "$kpkg"
dpkg-deb -x "$kpkg"_*.deb k
kmodver=$(ls k/lib/modules | head -n1)
kmods=k/lib/modules/$kmodver
cp k/boot/vmlinuz-* "$cache/vmlinuz.tmp"

# The kernel package ships no modules.dep (depmod runs at install): make one.
busybox depmod -b k "$kmodver"

# Root modules; their dependencies come from modules.dep.
# display: qxl, bochs (-vga std and bochs-display), virtio-gpu (virtio-vga)
# input: evdev (PS/2 atkbd/i8042 are built in), psmouse, usb tablet (xhci + usbhid)
# disk: virtio_blk (the video clip)
# ports: virtio_console (virtio-serial ports, e.g. a spiceport chardev)
roots="qxl bochs virtio-gpu virtio_pci virtio_blk evdev psmouse xhci-pci usbhid hid-generic virtio_console"
declare -A want=()
# shellcheck disable=SC2086 # one word per module
add_modules "$kmods" $roots

root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,mnt,etc}
rm_=$root/lib/modules/$kmodver
copy_modules "$kmods" "$rm_"
cp "$kmods"/modules.builtin "$kmods"/modules.order "$rm_/" 2>/dev/null || true
busybox depmod -b "$root" "$kmodver"
echo "guest: ${#want[@]} modules"

# --- userland -----------------------------------------------------------------
install_busybox "$root"
install -m755 "$here/init" "$root/init"
gcc -static -O2 -Wall -o "$root/bin/workload" "$here/workload.c"
strip "$root/bin/workload"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) > "$cache/initrd.img.tmp"

# --- video clips -----------------------------------------------------------
# Header (4096 bytes, text): "SPRSVID1 <w> <h> <frames> BGR\nclip <name>\n", then raw BGR
# frames. Megamind keeps the name video.img (every test and bench row plays it).
clip_file() { [ "$1" = megamind ] && echo video.img || echo "video-$1.img"; }

# decode_avi FILE: the AVI's frames, scaled to VWxVH, into frames.raw
decode_avi() {
    gst-launch-1.0 -q filesrc location="$1" ! avidemux name=m m.video_0 ! decodebin \
        ! videoconvert ! videoscale ! "video/x-raw,format=BGR,width=$VW,height=$VH" \
        ! filesink location=frames.raw
}

gcc -O2 -Wall -o clipgen "$here/clipgen.c" -lm
have_ocv=
apt-get download -q opencv-doc >/dev/null 2>&1 && dpkg-deb -x opencv-doc_*.deb ocv && have_ocv=1
for clip in $CLIPS; do
    rm -f frames.raw
    case $clip in
        megamind) [ -n "$have_ocv" ] && decode_avi "ocv/$OCV/Megamind.avi" ;;
        street) [ -n "$have_ocv" ] && decode_avi "ocv/$OCV/vtest.avi" ;;
        screen | anim) ./clipgen "$clip" "$VW" "$VH" "$VFRAMES" > frames.raw ;;
    esac || true
    f=$(clip_file "$clip")
    if [ ! -s frames.raw ]; then
        echo "guest: WARNING no $clip clip (opencv-doc/gstreamer missing); the guest will draw synthetic frames" >&2
        continue
    fi
    fsz=$((VW * VH * 3))
    n=$(( $(stat -c %s frames.raw) / fsz ))
    [ "$n" -gt "$VFRAMES" ] && n=$VFRAMES
    { printf 'SPRSVID1 %d %d %d BGR\nclip %s\n' "$VW" "$VH" "$n" "$clip"; head -c 4096 /dev/zero; } | head -c 4096 > "$cache/$f.tmp"
    head -c $((n * fsz)) frames.raw >> "$cache/$f.tmp"
    truncate -s %512 "$cache/$f.tmp"   # whole sectors for virtio-blk
    mv "$cache/$f.tmp" "$cache/$f"
    echo "guest: video clip $clip $n frames ${VW}x${VH} ($f)"
done

mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
mv "$cache/initrd.img.tmp" "$cache/initrd.img"
echo "$kpkg $kver" > "$cache/done"
link_out
