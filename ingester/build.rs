//! `inflow-ingester` embeds the Python the build links (the processing
//! engine): the binary finds that libpython through an rpath rather than
//! whichever one the system's loader finds first.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
