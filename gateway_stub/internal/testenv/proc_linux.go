//go:build linux

package testenv

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child get SIGKILL if the test binary dies first, so a crashed or
// timed-out test run leaves no nats-server or worker behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
