# Preliminary image (amd64/arm64/armv7); the deployment issue completes it (entrypoint that
# renders and validates, non-root user, health check).
FROM golang:1.26-bookworm AS telegraf
COPY telegraf/ /src/telegraf/
RUN cp "$(/src/telegraf/build.sh)" /usr/local/bin/telegraf

FROM python:3.11-slim-bookworm
COPY --from=telegraf /usr/local/bin/telegraf /usr/local/bin/telegraf
COPY . /src
RUN python -m venv /opt/bridge && /opt/bridge/bin/pip install --no-cache-dir "/src[hoymiles,hoymiles-wifi]" && rm -rf /src
ENV PATH=/opt/bridge/bin:$PATH TELEGRAF_BIN=/usr/local/bin/telegraf
VOLUME /var/lib/telegraf-bridge
CMD ["bridge-cli", "run", "--config", "/etc/telegraf-bridge/bridge.yaml", "--workdir", "/var/lib/telegraf-bridge/run"]
