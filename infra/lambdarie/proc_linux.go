package lambdarie

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// setProcAttrs puts the RIE in its own process group and has the kernel SIGTERM it
// if the test process dies first (a go test timeout runs no cleanup).
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// terminate asks the RIE to stop: on SIGTERM it SIGKILLs its runtime and exits.
func terminate(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// children lists pid's child processes: the runtime, which the RIE starts in a
// process group of its own, so killing the RIE's group does not reach it.
func children(pid int) []int {
	var kids []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// killRuntimes kills the runtimes that outlived the RIE (normally none: the RIE
// kills its runtime, and a runtime exits when its Runtime API goes away), checking
// that each pid still runs binary before killing its group.
func killRuntimes(pids []int, binary string) {
	for _, p := range pids {
		exe, err := os.Readlink("/proc/" + strconv.Itoa(p) + "/exe")
		if err == nil && exe == binary {
			syscall.Kill(-p, syscall.SIGKILL)
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}
