# Builds the repin binary into a small final image that runs as a non-root user.
#
# Both base images are pinned by digest, and repin keeps the pins fresh: the project's
# own workflow (.github/workflows/repin.yml) runs repin on this repository.
#
#   docker build -t repin .
#   docker run --rm -v "$PWD:/work" repin scan .
FROM rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
WORKDIR /src
# git2's HTTPS transport links OpenSSL (libgit2 itself is vendored and static).
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin repin

# distroless/cc: glibc, libgcc, libssl3, CA certificates, tzdata and the `nonroot` user
# (65532); no shell, no package manager. repin needs no `git` binary: git2 does it all.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /src/target/release/repin /usr/local/bin/repin
USER nonroot
WORKDIR /work
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/repin"]
CMD ["scan", "."]
