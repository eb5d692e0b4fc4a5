# The hcp operator image: the operator, the CLI and the agent served to hosts.
# Build the binaries first (make build), then: docker build -t <registry>/hcp-operator:<version> .
FROM gcr.io/distroless/base-debian12:nonroot
COPY bin/hcp-operator bin/hcp bin/hcp-agent /usr/local/bin/
COPY bin/release/ /usr/share/hcp/releases/
ENV HCP_RELEASE_DIR=/usr/share/hcp/releases
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hcp-operator"]
