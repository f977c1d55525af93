# Multi-stage: build with the Rust toolchain, run as non-root from a small base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/meshbroker

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/meshbroker /usr/local/bin/meshbroker
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/meshbroker"]
CMD ["serve"]
