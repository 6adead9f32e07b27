# syntax=docker/dockerfile:1
# Pawfile: release build with cargo-leptos, then a slim runtime image running as an unprivileged user.
#   docker build -t pawfile .
#   docker run -p 3000:3000 -e DATABASE_URL=... -e PAWFILE_S3_ENDPOINT=... pawfile

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS tools
RUN rustup target add wasm32-unknown-unknown \
 && apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
# cargo-leptos 0.3.11 pins cargo-util-schemas 0.14.2 (rustc 1.96); build it with 0.14.1 on rustc 1.95.
RUN mkdir -p /tmp/fetch/src && cd /tmp/fetch \
 && printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncargo-leptos = "=0.3.11"\n' > Cargo.toml \
 && touch src/lib.rs && cargo fetch \
 && tar -xzf "$(ls $CARGO_HOME/registry/cache/*/cargo-leptos-0.3.11.crate | head -n 1)" -C /tmp \
 && cd /tmp/cargo-leptos-0.3.11 \
 && cargo update -p cargo-util-schemas --precise 0.14.1 \
 && cargo install --path . --locked --features no_downloads \
 && rm -rf /tmp/fetch /tmp/cargo-leptos-0.3.11
# wasm-bindgen-cli must equal the wasm-bindgen version in Cargo.lock.
RUN cargo install wasm-bindgen-cli --version 0.2.130
# wasm-opt for release builds: Debian's binaryen (v108) breaks hydration; npm's binaryen 132 works.
RUN npm install --global binaryen@132.0.0

FROM tools AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
RUN cargo leptos build --release --cargo-locked \
 && cp target/release/pawfile /usr/local/bin/pawfile

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/pawfile --create-home --shell /usr/sbin/nologin pawfile
COPY --from=build /usr/local/bin/pawfile /usr/local/bin/pawfile
COPY --from=build /src/target/site /usr/share/pawfile/site
# Listening beyond loopback needs the address people use: run with
#   -e PAWFILE_PUBLIC_URL=https://records.example-clinic.org
# (Pawfile refuses to start without it and says so in one line).
ENV LEPTOS_SITE_ROOT=/usr/share/pawfile/site \
    PAWFILE_LISTEN=0.0.0.0:3000 \
    PAWFILE_DATA_DIR=/var/lib/pawfile \
    PAWFILE_LOG_FORMAT=json
USER pawfile
WORKDIR /var/lib/pawfile
EXPOSE 3000
# tini forwards SIGTERM so in-flight requests finish on `docker stop`.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pawfile"]
CMD ["serve"]
