//go:build !linux

package lambdarie

import "os/exec"

// The RIE is a Linux program; elsewhere the RIE process alone is stopped.

func setProcAttrs(*exec.Cmd) {}

func terminate(cmd *exec.Cmd) { cmd.Process.Kill() }

func kill(cmd *exec.Cmd) { cmd.Process.Kill() }

func children(int) []int { return nil }

func killRuntimes([]int, string) {}
