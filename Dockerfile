# syntax=docker/dockerfile:1
#
# Wuyou's three binaries in one image: wuyoud (the service, the default
# command), wuyouctl (operator CLI) and carriersim (carrier simulator).
#
#   docker build -t wuyou \
#     --build-arg VERSION="$(git describe --always --dirty)" --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 8080:8080 -e WUYOU_HTTP_ADDR=:8080 wuyou dev
#                        # wuyoud dev: embedded mode, nothing durable; it binds loopback
#                        # unless told otherwise, which a published port cannot reach
#   docker run --rm --entrypoint carriersim wuyou --help

# ---- build: static binaries --------------------------------------------------
# Pinned to a patch release: govulncheck reports ten standard-library
# vulnerabilities in go1.26.8 that 1.26.9 and 1.26.10 fix. GOTOOLCHAIN=local
# makes this image's Go the one that builds, never a toolchain go.mod would
# have it download; raise both together.
FROM golang:1.26.10 AS build
ENV GOTOOLCHAIN=local
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What `wuyoud version`, `wuyouctl version` and wuyou_build_info report. The
# context has no .git (.dockerignore), so Go cannot stamp the commit itself:
# pass VERSION and REVISION as build arguments (above); unset, they say "dev"
# and "unknown".
ARG VERSION=dev
ARG REVISION=
RUN CGO_ENABLED=0 go build -trimpath -o /out/ -ldflags="-s -w \
	-X github.com/wuyou/wuyou/internal/buildinfo.Version=${VERSION} \
	-X github.com/wuyou/wuyou/internal/buildinfo.Revision=${REVISION} \
	-X github.com/wuyou/wuyou/internal/buildinfo.BuildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	./cmd/wuyoud ./cmd/wuyouctl ./cmd/carriersim

# ---- runtime -----------------------------------------------------------------
# Debian slim rather than distroless so the compose healthcheck can curl
# /readyz; curl and CA certificates are all that is added.
FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates curl \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 wuyou \
	&& useradd --system --uid 10001 --gid wuyou --create-home --home-dir /home/wuyou --shell /usr/sbin/nologin wuyou
COPY --from=build /out/ /usr/local/bin/
# Non-root; its home is the working directory, the one place it may write.
USER 10001:10001
WORKDIR /home/wuyou
EXPOSE 8080
ENTRYPOINT ["wuyoud"]
