package controlplane

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A record left by an owner that no longer runs gets its processes killed and
// its dir removed; a live owner's record and processes that no longer run the
// recorded binary are left alone.
func TestCleanStaleKillsOnlyOrphansOfDeadOwners(t *testing.T) {
	registry := t.TempDir()
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("no sleep binary: %v", err)
	}
	if sleepPath, err = filepath.Abs(sleepPath); err != nil {
		t.Fatal(err)
	}
	startSleep := func() *exec.Cmd {
		cmd := exec.Command(sleepPath, "300")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting sleep: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	orphan, kept := startSleep(), startSleep()

	// A dead owner: a process that has already exited.
	dead := exec.Command(sleepPath, "0")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	staleDir := t.TempDir()
	if err := writeRecord(filepath.Join(registry, "dead.json"), record{
		OwnerPID: dead.Process.Pid, OwnerStart: "1", Dir: staleDir, RemoveDir: true,
		Processes: []recordEntry{
			{Name: "etcd", PID: orphan.Process.Pid, Path: sleepPath},
			// PID reused by something else: must not be killed.
			{Name: "kube-apiserver", PID: kept.Process.Pid, Path: "/nonexistent/kube-apiserver"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	// A live owner (this test binary): untouched even though its process matches.
	self, _ := procStartTime(os.Getpid())
	if err := writeRecord(filepath.Join(registry, "live.json"), record{
		OwnerPID: os.Getpid(), OwnerStart: self,
		Processes: []recordEntry{{Name: "etcd", PID: kept.Process.Pid, Path: sleepPath}},
	}); err != nil {
		t.Fatal(err)
	}

	killed, err := cleanStale(registry)
	if err != nil {
		t.Fatalf("cleanStale: %v", err)
	}
	if want := "etcd (pid " + strconv.Itoa(orphan.Process.Pid) + ")"; len(killed) != 1 || killed[0] != want {
		t.Errorf("killed = %q, want [%q]", killed, want)
	}

	waitErr := make(chan error, 1)
	go func() { waitErr <- orphan.Wait() }()
	select {
	case err := <-waitErr:
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("orphan ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("orphan still running after cleanStale")
	}
	if err := syscall.Kill(kept.Process.Pid, 0); err != nil {
		t.Errorf("process of a live owner / reused PID was signalled: %v", err)
	}
	if _, err := os.Stat(staleDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale dir not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(registry, "dead.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(registry, "live.json")); err != nil {
		t.Errorf("live record removed: %v", err)
	}
}
