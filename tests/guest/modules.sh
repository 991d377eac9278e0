# Shared by tests/guest/build.sh and tests/guest-debian/build.sh (sourced; bash).
# Kernel modules and busybox for a busybox initramfs, from Debian's packages.

# add_modules MODDIR ROOT...: adds each ROOT module and what it depends on (from
# MODDIR/modules.dep) to the associative array `want` (paths relative to MODDIR).
add_modules() {
    local moddir=$1 r p
    shift
    for r in "$@"; do
        p=$(awk -v r="/$r.ko" '{f=$1; sub(":$","",f); g=f; sub("\\.(xz|zst)$","",g)}
                               substr(g, length(g)-length(r)+1)==r {print f; exit}' \
                "$moddir/modules.dep")
        [ -n "$p" ] || { echo "build.sh: module $r not found" >&2; exit 1; }
        _add_module "$moddir" "$p"
    done
}

_add_module() {
    local moddir=$1 m=$2 d
    [ -n "${want[$m]:-}" ] && return
    want[$m]=1
    for d in $(awk -v m="$m:" '$1==m {for (i=2;i<=NF;i++) print $i}' "$moddir/modules.dep"); do
        _add_module "$moddir" "$d"
    done
}

# copy_modules FROM TO: copies the modules in `want` from FROM to TO, decompressed
# (busybox insmod reads plain .ko only).
copy_modules() {
    local from=$1 to=$2 m
    for m in "${!want[@]}"; do
        mkdir -p "$to/$(dirname "$m")"
        case "$m" in
            *.ko.xz)  xz -dc "$from/$m" > "$to/${m%.xz}" ;;
            *.ko.zst) zstd -qdc "$from/$m" > "$to/${m%.zst}" ;;
            *)        cp "$from/$m" "$to/$m" ;;
        esac
    done
}

# install_busybox ROOT: Debian's static busybox as ROOT/bin/busybox and ROOT/bin/sh
# (downloaded into the current directory when the package is not installed).
install_busybox() {
    local bb
    bb=$(dpkg -L busybox-static 2>/dev/null | grep -m1 -E '/bin/busybox$' || true)
    if [ -z "$bb" ]; then
        apt-get download -q busybox-static >/dev/null 2>&1
        dpkg-deb -x busybox-static_*.deb bbx
        bb=$PWD/bbx/bin/busybox
    fi
    cp "$bb" "$1/bin/busybox"
    ln -s busybox "$1/bin/sh"
}
