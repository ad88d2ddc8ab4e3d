package e2e

import "syscall"

// sysProcAttr gives the operator its own process group and has the kernel
// kill it if the test binary dies (panic, -timeout), so no operator outlives
// the tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
