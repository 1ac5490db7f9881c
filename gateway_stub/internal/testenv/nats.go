package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Nats is a real nats-server with JetStream on a loopback port, restartable on the same port
// and store.
type Nats struct {
	Port     int
	storeDir string
	bin      string
	cmd      *exec.Cmd
}

// StartNats starts a nats-server with a fresh store; Close stops it and removes the store.
func StartNats(ctx context.Context) (*Nats, error) {
	bin, err := venvExecutable("nats-server")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gateway-nats-")
	if err != nil {
		return nil, fmt.Errorf("nats store: %w", err)
	}
	n := &Nats{Port: port, storeDir: dir, bin: bin}
	if err := n.Start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

// URL is the server's client URL.
func (n *Nats) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.Port) }

// Start (re)starts the server and waits until it accepts connections.
func (n *Nats) Start(ctx context.Context) error {
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.Port), "-js", "-sd", n.storeDir)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server: %w", err)
	}
	n.cmd = cmd
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return WaitForPort(ctx, n.Port)
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s), keeping its store.
func (n *Nats) Stop() {
	stopProcess(n.cmd, 10*time.Second)
	n.cmd = nil
}

// Close stops the server and removes its store.
func (n *Nats) Close() {
	n.Stop()
	_ = os.RemoveAll(n.storeDir)
}
