//! spice-server's symbol version nodes, oldest first; each inherits the one before.
//! The functions are bound to their node by `.symver` directives next to each export
//! (`src/ffi/symver.rs`); this script only defines the nodes and hides the rest.

pub const NODES: &[&str] = &[
    "SPICE_SERVER_0.6.0",
    "SPICE_SERVER_0.6.1",
    "SPICE_SERVER_0.8.0",
    "SPICE_SERVER_0.8.1",
    "SPICE_SERVER_0.8.2",
    "SPICE_SERVER_0.8.3",
    "SPICE_SERVER_0.10.0",
    "SPICE_SERVER_0.10.1",
    "SPICE_SERVER_0.10.2",
    "SPICE_SERVER_0.10.3",
    "SPICE_SERVER_0.10.4",
    "SPICE_SERVER_0.11.2",
    "SPICE_SERVER_0.11.4",
    "SPICE_SERVER_0.12.2",
    "SPICE_SERVER_0.12.3",
    "SPICE_SERVER_0.12.4",
    "SPICE_SERVER_0.12.5",
    "SPICE_SERVER_0.12.6",
    "SPICE_SERVER_0.13.1",
    "SPICE_SERVER_0.13.2",
    "SPICE_SERVER_0.14.2",
    "SPICE_SERVER_0.14.3",
];

pub fn version_script() -> String {
    let mut script = String::new();
    for (i, node) in NODES.iter().enumerate() {
        if i == 0 {
            script.push_str(&format!("{node} {{\n  local: *;\n}};\n"));
        } else {
            script.push_str(&format!("{node} {{\n}} {};\n", NODES[i - 1]));
        }
    }
    script
}
