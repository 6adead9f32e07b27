# syntax=docker/dockerfile:1
# Pawfile: release build with cargo-leptos, then a slim runtime image running as an unprivileged user.
#   docker build -t pawfile .
#   docker run -p 3000:3000 -e DATABASE_URL=... -e PAWFILE_S3_ENDPOINT=... pawfile

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS tools
# Debian's versions are not pinned: bookworm's archive keeps only the current one (with its security
# fixes), so a pinned version stops installing at the next point release.
# hadolint ignore=DL3008
RUN rustup target add wasm32-unknown-unknown \
 && apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
# cargo-leptos 0.3.11 pins cargo-util-schemas 0.14.2 (rustc 1.96); build it with 0.14.1 on rustc 1.95.
RUN mkdir -p /tmp/fetch/src \
 && printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncargo-leptos = "=0.3.11"\n' > /tmp/fetch/Cargo.toml \
 && touch /tmp/fetch/src/lib.rs && cargo fetch --manifest-path /tmp/fetch/Cargo.toml \
 && tar -xzf "$(find "$CARGO_HOME/registry/cache" -name cargo-leptos-0.3.11.crate -print -quit)" -C /tmp \
 && cargo update --manifest-path /tmp/cargo-leptos-0.3.11/Cargo.toml -p cargo-util-schemas --precise 0.14.1 \
 && cargo install --path /tmp/cargo-leptos-0.3.11 --locked --features no_downloads \
 && rm -rf /tmp/fetch /tmp/cargo-leptos-0.3.11
# wasm-bindgen-cli must equal the wasm-bindgen version in Cargo.lock.
RUN cargo install wasm-bindgen-cli --version 0.2.130
# wasm-opt for release builds: Debian's binaryen (v108) breaks hydration; npm's binaryen 132 works.
# (A layer of its own, so changing one tool's version does not rebuild the other.)
# hadolint ignore=DL3059
RUN npm install --global binaryen@132.0.0

FROM tools AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
# The same script scripts/test runs: /dist holds the image's files at their paths
# (usr/local/bin/pawfile, usr/share/pawfile/site).
RUN scripts/build-release /dist

FROM debian:bookworm-slim AS runtime
# Unpinned for the reason given in the tools stage.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pawfile \
 && useradd --system --uid 10001 --gid pawfile --home-dir /var/lib/pawfile --create-home \
    --shell /usr/sbin/nologin pawfile
COPY --from=build /dist/ /
# Listening beyond loopback needs the address people use: run with
#   -e PAWFILE_PUBLIC_URL=https://records.example-clinic.org
# (Pawfile refuses to start without it and says so in one line).
ENV LEPTOS_SITE_ROOT=/usr/share/pawfile/site \
    PAWFILE_LISTEN=0.0.0.0:3000 \
    PAWFILE_DATA_DIR=/var/lib/pawfile \
    PAWFILE_LOG_FORMAT=json
# Numeric, so an orchestrator can see it is not root (Kubernetes' runAsNonRoot): the user pawfile.
USER 10001:10001
# A working folder the user cannot write to: everything Pawfile writes goes to PAWFILE_DATA_DIR (the one
# volume), none of it to wherever it was started.
WORKDIR /usr/share/pawfile
EXPOSE 3000
# The slim image has no curl: `pawfile healthcheck` asks /healthz at PAWFILE_LISTEN (exit 0 or 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/pawfile", "healthcheck"]
# tini forwards SIGTERM so in-flight requests finish on `docker stop`.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pawfile"]
CMD ["serve"]
