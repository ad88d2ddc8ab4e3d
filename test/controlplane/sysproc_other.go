//go:build !linux

package controlplane

import "syscall"

// sysProcAttr puts each child in its own process group. Outside Linux there is
// no parent-death signal: children of a crashed test binary are left to the
// stale-process cleanup of the next Start.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
