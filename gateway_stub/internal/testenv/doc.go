// Package testenv starts the real parts the gateway's tests run against: a nats-server with
// JetStream and Python worker processes, both taken from the repository's own virtual
// environment (../.venv relative to the module, or $AGENTOS_VENV), so `go test ./...` needs
// nothing installed by hand beyond what `make` installs. Only loopback addresses are used.
package testenv
