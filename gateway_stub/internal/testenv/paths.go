package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ModuleRoot is the directory holding the gateway_stub go.mod, found by walking up from the
// working directory (go test runs each package in its own directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// VenvBin is the bin directory of the repository's virtual environment: $AGENTOS_VENV/bin when
// set, otherwise ../.venv/bin beside the module.
func VenvBin() (string, error) {
	if venv := os.Getenv("AGENTOS_VENV"); venv != "" {
		return filepath.Join(venv, "bin"), nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(root), ".venv", "bin"), nil
}

// RepoRoot is the Python project's directory (the module's parent).
func RepoRoot() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Dir(root), nil
}

func venvExecutable(name string) (string, error) {
	bin, err := VenvBin()
	if err != nil {
		return "", err
	}
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found (run `make` at the repository root to build the venv): %w", path, err)
	}
	return path, nil
}
