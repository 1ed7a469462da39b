//! The engine embeds the Python the build links: its tests find that
//! libpython through an rpath (the binaries that embed the engine do the
//! same), and the interpreter's path is compiled in to make the plugins'
//! virtual environment with.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    let python = pyo3_build_config::get()
        .executable()
        .map(str::to_string)
        .unwrap_or_else(|| "python3".to_string());
    println!("cargo:rustc-env=INFLOW_PYTHON={python}");
}
