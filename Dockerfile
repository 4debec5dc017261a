# syntax=docker/dockerfile:1
#
# Wuyou's three binaries in one image: wuyoud (the service, the default
# command), wuyouctl (operator CLI) and carriersim (carrier simulator).
#
#   docker build -t wuyou .
#   docker run --rm -p 8080:8080 wuyou dev    # wuyoud dev: embedded mode, nothing durable
#   docker run --rm --entrypoint carriersim wuyou --help

# ---- build: static binaries --------------------------------------------------
FROM golang:1.26 AS build
# go.mod asks for a given patch release; an older cached golang:1.26 fetches
# it instead of refusing to build (the image defaults to GOTOOLCHAIN=local).
ENV GOTOOLCHAIN=auto
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
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
