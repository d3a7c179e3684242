# telegraf-bridge for amd64, arm64 and armv7 (Raspberry Pi 2-5, home servers):
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t telegraf-bridge .
# The Pi Zero (ARMv6) has its own file, Dockerfile.armv6. docs/containers.md explains the
# entrypoint and every variable; mount your bridge.yaml at /etc/telegraf-bridge/bridge.yaml.

# Stage 1: the custom Telegraf (only the bundle's plugins), cross-compiled on the build machine
# for the target: Go needs no emulation, so the arm images build at native speed.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS telegraf
ARG TARGETARCH
ARG TARGETVARIANT
WORKDIR /src
COPY telegraf/ telegraf/
RUN goarm=""; \
    if [ "$TARGETARCH" = "arm" ]; then goarm="${TARGETVARIANT#v}"; fi; \
    out="$(GOOS=linux GOARCH="$TARGETARCH" GOARM="$goarm" TELEGRAF_BRIDGE_CACHE=/cache telegraf/build.sh)" \
    && install -m 0755 "$out" /telegraf

# Stage 2: the bundle in a virtual environment. gcc is here only: the libgpiod bindings (gpio
# extra) ship as an sdist with C code; the runtime image gets the built venv, not the compiler.
FROM python:3.11-slim-bookworm AS venv
# Debian stable replaces package versions in point releases; the image tag pins the suite.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
COPY cli/ cli/
COPY plugins/ plugins/
COPY templates/ templates/
COPY telegraf/ telegraf/
RUN python -m venv /opt/bridge \
    && /opt/bridge/bin/pip install --no-cache-dir "/src[gpio,hoymiles,hoymiles-wifi,mqtt]"

# Stage 3: the runtime. The entrypoint starts as root only to hand the data volume to the
# `bridge` user and join the device nodes' groups; Telegraf and every plugin run as `bridge`.
FROM python:3.11-slim-bookworm
# tini is PID 1: it forwards SIGTERM to Telegraf (which flushes and stops the plugins, which
# save their state) and reaps processes a crashed plugin leaves behind.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --home-dir /var/lib/telegraf-bridge \
       --shell /usr/sbin/nologin bridge \
    && mkdir -p /var/lib/telegraf-bridge /etc/telegraf-bridge \
    && chown bridge:bridge /var/lib/telegraf-bridge
COPY --from=telegraf /telegraf /usr/local/bin/telegraf
COPY --from=venv /opt/bridge /opt/bridge
ENV PATH=/opt/bridge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TELEGRAF_BIN=/usr/local/bin/telegraf \
    BRIDGE_DATA_DIR=/var/lib/telegraf-bridge
# Disk buffer, plugin state and the rendered config: keep them across container updates.
VOLUME ["/var/lib/telegraf-bridge"]
WORKDIR /var/lib/telegraf-bridge
# Telegraf's health output (outputs.health) answers 200 while Telegraf runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["bridge-healthprobe"]
ENTRYPOINT ["/usr/bin/tini", "--", "bridge-entrypoint"]
