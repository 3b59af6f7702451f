# Builds the repin binary into a small, non-root final image.
#
# The base images are referenced by tag until repin can resolve digests itself
# (`repin update --pin`); from then on it keeps its own pins fresh.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# git2's HTTPS transport links OpenSSL.
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin repin

# distroless/cc: glibc, libgcc, libssl, CA certificates and a nonroot user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/repin /usr/local/bin/repin
USER nonroot
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/repin"]
CMD ["scan", "."]
