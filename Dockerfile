# Builds the repin binary into a small, non-root final image.
#
# The base images are referenced by tag until repin can resolve digests itself
# (`repin update --pin`); from then on it keeps its own pins fresh.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin repin

# distroless/cc: glibc, libgcc, CA certificates and a nonroot user, nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/repin /usr/local/bin/repin
USER nonroot
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/repin"]
CMD ["scan", "."]
