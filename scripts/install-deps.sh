#!/usr/bin/env bash
# Installs everything the build and the tests need, from Debian's packages only.
# Idempotent: a stamp keyed on this file's contents skips the work on a warm machine.
# The backports and deb-src entries reuse the mirror host already configured in
# /etc/apt/sources.list.d/*.sources (or sources.list); no host name is written here.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

stamp_dir="${SPICE_RS_CACHE:-$HOME/.cache/spice-rs}"
stamp="$stamp_dir/deps-$(sha256sum "$0" | cut -c1-16).stamp"
if [ -f "$stamp" ]; then exit 0; fi
mkdir -p "$stamp_dir"

# The Debian mirror URI already configured on this machine.
debian_uri() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '/^URIs:/ {print $2}' "$f" | grep -v -- '-security' | head -n1 || true)
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    if [ -f /etc/apt/sources.list ]; then
        awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list
    fi
}

uri=$(debian_uri)
if [ -z "$uri" ]; then
    echo "install-deps: no Debian mirror found in the apt sources" >&2
    exit 1
fi

extra=/etc/apt/sources.list.d/spice-rs.sources
want=$(cat <<SRC
Types: deb deb-src
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
)
if [ ! -f "$extra" ] || [ "$(cat "$extra")" != "$want" ]; then
    echo "$want" | $SUDO tee "$extra" >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq

# QEMU 10 and the pieces that must come from backports with it.
BPO_PKGS=(
    qemu-system-x86 qemu-system-modules-spice qemu-system-gui
    # the patched QEMU (make qemu): QEMU 10 needs meson >= 1.5 and pycotap
    meson python3-pycotap
    # GStreamer encoders: libgstreamer-plugins-base1.0-dev pulls libdrm-dev, libgbm-dev
    # and libwayland-dev, which must match the backports mesa/wayland QEMU 10 brings
    libdrm-dev libgbm-dev libwayland-dev
)
PKGS=(
    # build
    build-essential pkg-config cpio xz-utils zstd
    libspice-protocol-dev libspice-server-dev libspice-server1
    # the guest
    busybox-static
    # the Debian guest with the real agent (tests/guest-debian/build.sh)
    debootstrap e2fsprogs
    # the client and the harness
    python3-gi gir1.2-spiceclientglib-2.0 gir1.2-spiceclientgtk-3.0 spice-client-gtk
    python3-pil xvfb python3-pytest
    # the benchmark (bench/): PSNR and its chart
    python3-numpy python3-matplotlib
    # test media: the guest's video clip is decoded on the host with GStreamer
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-libav
    # GStreamer video encoders (src/video/gst): x264 (ugly), x265 and va/nvcodec (bad),
    # libvpx and jpeg (good), avenc_mjpeg (libav)
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    # MJPEG video streams: libjpeg-turbo's TurboJPEG API
    libturbojpeg0-dev
    # Opus for the playback and record channels (src/audio/opus.rs, the opus crate)
    libopus-dev
    # tooling
    valgrind ovmf seabios ipxe-qemu
    # the patched QEMU (make qemu, scripts/build-qemu.sh)
    ninja-build ccache python3-venv libglib2.0-dev libpixman-1-dev libslirp-dev libfdt-dev
    zlib1g-dev chrpath
    # TLS tests (tests/e2e/test_tls.py makes its CA with the CLI) and the TLS port scan
    openssl sslscan
    # WebSocket tests (tests/e2e/test_websocket.py): spice-html5 in headless chromium
    spice-html5 chromium chromium-driver python3-selenium
    # SASL (src/ffi/sasl.rs links libsasl2; SCRAM/DIGEST plugins; saslpasswd2 for the
    # tests' sasldb)
    libsasl2-dev libsasl2-modules libsasl2-modules-db sasl2-bin
    # USB redirection (tests/e2e/test_usbredir.py): the raw client's RSA ticket, and
    # usbredirproto.h, the protocol usbredir_peer.py speaks
    python3-cryptography libusbredirparser-dev
    # the A/V sync test's guest player (tests/guest-debian/avplay.c, built on the host)
    libasound2-dev libx11-dev
)
$SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BPO_PKGS[@]}"
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"

touch "$stamp"
