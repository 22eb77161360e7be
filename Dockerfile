# Twofold in a container: a static binary, run as a non-root user, its data in a volume.
#   docker build -t twofold .
#   docker run -p 8080:8080 -v twofold-data:/data twofold
#   docker exec <container> twofold app show 1 --show-key
# (Not built by the test command: this machine has no container runtime. The health check's
# subcommand is tested: cmd/twofold/version_test.go.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/twofold ./cmd/twofold && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/twofold /usr/local/bin/twofold
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV TWOFOLD_DATA_DIR=/data TWOFOLD_ADDR=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
USER nonroot
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["twofold", "healthcheck"]
ENTRYPOINT ["twofold"]
CMD ["serve"]
