# Sourced by the benchmark scripts: builds `inflow` and `inflow-bench` and
# sets `bin` to their directory. INFLOW_BENCH_PROFILE=debug checks a script
# itself quickly; figures need release.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inflow-target}"
profile="${INFLOW_BENCH_PROFILE:-release}"
if [ "$profile" = release ]; then
    cargo build --release --bin inflow --bin inflow-bench >&2
else
    cargo build --bin inflow --bin inflow-bench >&2
fi
bin="$CARGO_TARGET_DIR/$profile"
