package controlplane

import "syscall"

// sysProcAttr puts each child in its own process group, so Stop can kill
// everything it spawned with one signal and a terminal's Ctrl-C reaches only
// the test binary, and asks the kernel to SIGKILL the child when its parent
// dies. That last part is what cleans up after a test binary that panics in a
// test goroutine, hits the -timeout or is killed: no deferred code runs then.
// Children are forked from a thread that lives as long as the process (see
// spawn), because the signal follows the forking thread.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
