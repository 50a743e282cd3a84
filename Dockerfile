# multiarch's job image: a static (musl) multiarch binary on Alpine, which keeps a shell for
# GitLab's `script:` and carries CA certificates. Built natively per architecture by the
# build-buildah component (no emulation), then published with multiarch itself.

FROM docker.io/library/rust:1.95-alpine3.22 AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked \
 && cp target/release/multiarch /multiarch

FROM docker.io/library/alpine:3.22
RUN apk add --no-cache ca-certificates \
 && adduser -D -H -u 10001 -s /sbin/nologin multiarch
COPY --from=build /multiarch /usr/local/bin/multiarch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="multiarch" \
      org.opencontainers.image.description="Publish multi-architecture container images from per-architecture tags" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# A numeric, unprivileged user: GitLab runners and Kubernetes' runAsNonRoot can check it.
USER 10001:10001
CMD ["multiarch", "--help"]
