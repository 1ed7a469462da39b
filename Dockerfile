# Inflow's image: every binary (inflow, the three roles, the operator) on a
# slim Debian runtime, run as a non-root user. `docker build -t inflow .`
# (no Docker daemon runs in this project's CI: scripts/image.sh assembles the
# same image as an OCI layout with umoci.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
        --bin inflow --bin inflow-ingester --bin inflow-querier --bin inflow-compactor --bin inflow-operator \
    && mkdir /out \
    && cp target/release/inflow target/release/inflow-ingester target/release/inflow-querier \
          target/release/inflow-compactor target/release/inflow-operator /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/inflow --create-home inflow
COPY --from=build /out/ /usr/local/bin/
USER 10001
WORKDIR /var/lib/inflow
EXPOSE 8181
ENTRYPOINT []
CMD ["inflow", "serve", "--http-bind", "0.0.0.0:8181", "--data-dir", "/var/lib/inflow"]
