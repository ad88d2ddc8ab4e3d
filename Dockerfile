# The operator image: a static Go binary on distroless "static" (no shell, no
# libc), running as a non-root user. `make build` produces the same binary
# without Docker (CGO_ENABLED=0, -trimpath, -s -w).
#
#   docker build -t ghcr.io/vidra-operator/vidra:v0.1.0 --build-arg VERSION=v0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 ...

# Base images are pinned by digest (multi-arch index digests; the tag beside
# them says what they are, the digest decides which image it is). Updating a
# base is a reviewed commit:
#
#   docker buildx imagetools inspect golang:1.26 --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot --format '{{json .Manifest.Digest}}'
#   # or: crane digest golang:1.26
#
# then replace the sha256 below and rebuild.

FROM --platform=$BUILDPLATFORM golang:1.26@sha256:3aff6657219a4d9c14e27fb1d8976c49c29fddb70ba835014f477e1c70636647 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so source edits reuse the module cache layer.
COPY go.mod go.sum ./
RUN go mod download
# Only what the operator is built from: no .cache, bin/ or test data.
COPY apis/ apis/
COPY cmd/vidra-operator/ cmd/vidra-operator/
COPY controllers/ controllers/
COPY generated/ generated/
COPY infrahub/ infrahub/
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/vidra-operator ./cmd/vidra-operator

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
LABEL org.opencontainers.image.title="vidra-operator" \
      org.opencontainers.image.description="Keeps Kubernetes clusters in sync with Infrahub artifacts" \
      org.opencontainers.image.source="https://github.com/vidra-operator/vidra"
COPY --from=build /out/vidra-operator /vidra-operator
# 65532 is distroless' "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/vidra-operator"]
