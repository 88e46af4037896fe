# Build a static sluice binary and ship it alone on a distroless non-root
# image. Multi-arch: docker buildx build --platform linux/amd64,linux/arm64
# (the build stage runs on the builder's platform and cross-compiles).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev COMMIT=unknown DATE=unknown TARGETOS=linux TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" -o /out/sluice ./cmd/sluice

# Pinned by digest (gcr.io/distroless/static-debian12:nonroot as of
# 2026-08-26): the same bytes on every build. To move it on:
#   crane digest gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev COMMIT=unknown DATE=unknown
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="GitOps progressive delivery where every rollout step lives in Git" \
      org.opencontainers.image.source="https://github.com/sluice-dev/sluice" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}"
COPY --from=build /out/sluice /sluice
USER 65532:65532
ENTRYPOINT ["/sluice"]
