// Package e2e holds the gateway stub's end-to-end tests: Go code against a real nats-server and
// real Python worker processes from the repository's own environment (see internal/testenv).
// seed_test.go is the seed's Go code with the fewest possible changes; the other files test the
// gateway_stub packages.
package e2e
