//! Links the cdylib as `libspice-server.so.1` with spice-server's symbol version
//! nodes, and generates the public C headers from `src/ffi/abi` (see
//! `build_support/headers.rs`).

#[path = "build_support/headers.rs"]
mod headers;
#[path = "build_support/symbols.rs"]
mod symbols;

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = out.join("spice-server.map");
    std::fs::write(&script, symbols::version_script()).expect("write version script");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libspice-server.so.1");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
    println!("cargo:rerun-if-changed=build_support/symbols.rs");
    headers::generate();
}
