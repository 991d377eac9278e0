# spice-rs — libspice-server.so.1 in Rust.
#   make            build the library into build/lib/ (with its symlinks) and the headers
#   make test       install what the tests need, build, run every test
#   make demo       boot the demo guest in QEMU with this library, print the spice:// URL
#   make bench      this library against Debian's C server, side by side -> BENCHMARKS.md
#   make qemu       QEMU 10.0.2 with qemu-patches/ (-spice video-codec=) into build/qemu/
#   make install PREFIX=/usr/local

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CARGO ?= cargo
SONAME := libspice-server.so.1
REALNAME := libspice-server.so.1.15.1
BUILD := build
LIB := $(BUILD)/lib
# cargo's output directory (CARGO_TARGET_DIR when set, as cargo itself reads it).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: all lib tools deps test unit abi lifecycle qxl replay qxl-client fuzz e2e lint demo install clean qemu

all: lib

lib:
	$(CARGO) build --release --locked
	mkdir -p $(LIB) $(BUILD)/pkgconfig
	cp $(TARGET_DIR)/release/libspice_server.so $(LIB)/$(REALNAME).tmp
	mv -f $(LIB)/$(REALNAME).tmp $(LIB)/$(REALNAME)
	ln -sf $(REALNAME) $(LIB)/$(SONAME)
	ln -sf $(SONAME) $(LIB)/libspice-server.so
	sed -e 's|@PREFIX@|$(CURDIR)|g' -e 's|@LIBDIR@|$(CURDIR)/$(LIB)|g' \
	    -e 's|@INCLUDEDIR@|$(CURDIR)/include|g' data/spice-server.pc.in > $(BUILD)/pkgconfig/spice-server.pc

# Test programs (the hostile client the robustness tests drive).
tools:
	$(CARGO) build --release --locked --examples

deps:
	bash scripts/install-deps.sh

test: deps lint unit lib abi lifecycle qxl qxl-client replay fuzz e2e

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --locked --features fuzzing

abi: lib
	bash tests/abi/run.sh
	bash tests/abi/symbols.sh $(LIB)/$(SONAME)

# create/init/destroy cycles under valgrind: no leak, threads joined, fds closed.
# Also checks `make install`: the test is built against the installed headers and .pc.
lifecycle: lib
	rm -rf $(BUILD)/install-test
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(BUILD)/install-test
	PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/install-test/lib/pkgconfig \
	    bash tests/lifecycle/run.sh $(CURDIR)/$(BUILD)/install-test/lib

# A C program playing QEMU's qxl device draws every QXL operation through this library and
# through Debian's C server; the surfaces must match pixel for pixel.
qxl: lib
	bash tests/qxl/run.sh $(LIB)

# The same scenarios served to a real client (spice-gtk): its picture must equal the server's
# own rendering pixel for pixel.
qxl-client: lib
	/usr/bin/python3 tests/qxl/client_compare.py --lib $(LIB)

# A real session recorded with QEMU and Debian's C server (cached) replayed through
# spice_replay_* with this library and with Debian's: the final surfaces must match.
replay: lib
	bash tests/replay/run.sh $(LIB)

# The QXL command parsers and the canvas, the link handshake and every channel's client
# messages, under libFuzzer, each for a bounded time (FUZZ_SECONDS in all, split across
# the targets).
# cargo-fuzz needs unstable flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
FUZZ_SECONDS ?= 70
FUZZ_TARGETS := qxl_command link websocket main_channel display_channel inputs_channel cursor_channel spicevmc_channel smartcard_channel agent sound_channels image_codecs
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	for t in $(FUZZ_TARGETS); do \
	    RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t --fuzz-dir fuzz -- \
	        -max_total_time=$$(( $(FUZZ_SECONDS) / $(words $(FUZZ_TARGETS)) )) -rss_limit_mb=2048 \
	        || exit 1; \
	done

e2e: lib tools qemu
	bash tests/e2e/run.sh

# QEMU 10.0.2 with qemu-patches/ (-spice video-codec=), built against this library's headers
# and spice-server.pc into build/qemu/bin/ (cached in ~/.cache/spice-rs, ccache for rebuilds).
qemu: deps lib
	bash scripts/build-qemu.sh $(CURDIR)/$(BUILD)/qemu

# Not part of `make test`: a benchmark, ~15 min on 2 cores. BENCH_QUICK=1 for a short
# smoke run (results in build/bench/); other knobs in bench/run.py.
bench: deps lib
	tests/guest/build.sh build/guest
	/usr/bin/python3 bench/run.py

demo: deps lib
	bash tests/e2e/demo.sh

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/spice-server
	install -m 755 $(LIB)/$(REALNAME) $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libspice-server.so
	install -m 644 include/spice-server/*.h $(DESTDIR)$(INCLUDEDIR)/spice-server/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' data/spice-server.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/spice-server.pc

clean:
	$(CARGO) clean
	rm -rf $(BUILD) include/spice-server
