# syntax=docker/dockerfile:1
#
# Artemis in C in a container (docs/DEPLOY.md, "Container").
#
#   docker build -t artemis .
#   docker run --shm-size=1g -p 8080:8080 -e ARTEMIS_REGISTRY_MAX_INSTANCES=200000 artemis
#
# Two stages on Debian 12, pinned by the images' dated tag (DEBIAN_TAG; pin a
# digest with --build-arg DEBIAN_TAG=bookworm-YYYYMMDD@sha256:...):
#   build    the build dependencies (scripts/deps.sh --build), `make all`,
#            `make install` into /out, and the list of packages whose shared
#            libraries the binaries load (scripts/runtime-deps.sh)
#   runtime  bookworm-slim with only those packages and curl (the health
#            check), the binaries, everything `make install` put under
#            /usr/share (the web console, the man pages) and the
#            configuration, running as the unprivileged user artemis
#
# Configuration: /etc/artemis/artemis.conf (data_dir /var/lib/artemis, log
# on stderr), replaced by mounting a file there, or overridden key by key
# with ARTEMIS_<SECTION>_<KEY> environment variables.
#
# The registry region lives in /dev/shm: give the container a shm size that
# holds it at full capacity (about 0.1 GB + 2.3 KB per [registry]
# max_instances: 2.4 GB for the default million, 0.55 GB for 200,000).
ARG DEBIAN_TAG=bookworm-20250520

FROM debian:${DEBIAN_TAG} AS build
WORKDIR /src
COPY . .
RUN sh scripts/deps.sh --build \
 && make -j"$(nproc)" all \
 && make install DESTDIR=/out PREFIX=/usr DATA_DIR=/var/lib/artemis \
 && sh scripts/runtime-deps.sh /out/usr/bin/artemis /out/usr/bin/artemis-bench >/out/runtime-packages

FROM debian:${DEBIAN_TAG}-slim AS runtime
COPY --from=build /out/runtime-packages /tmp/runtime-packages
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages \
        apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/artemis \
        --shell /usr/sbin/nologin artemis \
 && install -d -o artemis -g artemis -m 0750 /var/lib/artemis
COPY --from=build /out/usr/bin/ /usr/bin/
COPY --from=build /out/usr/share/ /usr/share/
COPY --from=build /out/etc/artemis/ /etc/artemis/
USER artemis
WORKDIR /var/lib/artemis
VOLUME ["/var/lib/artemis"]
EXPOSE 8080 9090
ENV HEALTHCHECK_URL=http://127.0.0.1:8080/ready
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "$HEALTHCHECK_URL" || exit 1
ENTRYPOINT ["/usr/bin/artemis"]
CMD ["server", "-c", "/etc/artemis/artemis.conf"]
