# oauth-mail-proxy container image (see README, "Running in containers and under systemd").
#
#   docker build -t oauth-mail-proxy .
#   docker run -v ./packaging/config.toml:/etc/oauth-mail-proxy/config.toml:ro \
#       -v omp-state:/var/lib/oauth-mail-proxy -e OAUTH_MAIL_PROXY_TOKEN_KEY=... \
#       -p 1143:1143 oauth-mail-proxy
#
# The config is mounted, not baked in; state_dir (tokens, their key unless
# OAUTH_MAIL_PROXY_TOKEN_KEY is set, generated certificates) is a volume.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin oauth-mail-proxy \
    && install -m 0755 target/release/oauth-mail-proxy /usr/local/bin/oauth-mail-proxy

FROM debian:bookworm-slim
# ca-certificates: the OAuth token endpoints and the upstream mail servers are
# verified against the system roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/oauth-mail-proxy \
        --no-create-home --shell /usr/sbin/nologin oauth-mail-proxy \
    && install -d -m 0700 -o 10001 -g 10001 /var/lib/oauth-mail-proxy \
    && install -d -m 0755 /etc/oauth-mail-proxy
COPY --from=build /usr/local/bin/oauth-mail-proxy /usr/local/bin/oauth-mail-proxy

ENV OAUTH_MAIL_PROXY_CONFIG=/etc/oauth-mail-proxy/config.toml
VOLUME ["/var/lib/oauth-mail-proxy"]
# The listeners of packaging/config.toml (IMAP, POP3, SMTP submission) and the admin
# listener (/healthz, /readyz, /metrics, the token page).
EXPOSE 1143 1110 1587 8025
USER 10001:10001
# No curl in the slim image: the binary's own `healthcheck` subcommand does the GET
# (reqwest is linked in already; curl would add ~20 packages to the image).
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["oauth-mail-proxy", "healthcheck", "http://127.0.0.1:8025/healthz"]
# `docker run IMAGE` serves; `docker run IMAGE login ACCOUNT --no-browser` (or
# `docker compose run --rm proxy login ...`) runs another command with the same
# config and state.
ENTRYPOINT ["oauth-mail-proxy"]
CMD ["serve"]
