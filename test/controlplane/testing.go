package controlplane

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"
)

// RunMain is for TestMain: it starts one control plane shared by the
// package's tests, stores it in *cp, runs the tests and stops it, returning
// the exit code for os.Exit:
//
//	var cp *controlplane.ControlPlane
//
//	func TestMain(m *testing.M) {
//		os.Exit(controlplane.RunMain(m, controlplane.Config{Name: "mypkg"}, &cp))
//	}
//
// The control plane is stopped when m.Run returns or panics. A panic in a test
// goroutine, a -timeout or a kill end the process without running deferred
// code; the children then die through their parent-death signal (Linux).
// Progress and, when tests fail, the tail of each log go to stderr, which
// go test shows for failing packages.
func RunMain(m *testing.M, cfg Config, cp **ControlPlane) (code int) {
	if cfg.Logf == nil {
		logger := log.New(os.Stderr, "", log.Ltime|log.Lmicroseconds)
		cfg.Logf = logger.Printf
	}
	c, err := Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	*cp = c
	defer func() {
		if code != 0 {
			fmt.Fprint(os.Stderr, c.LogTails(20))
		}
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	return m.Run()
}

// StartForTest starts a control plane for one test (for example a second
// cluster) and stops it in t.Cleanup. It fails the test if the start fails.
// Without cfg.Name it is named after the test; without cfg.Logf it logs with
// t.Logf.
func StartForTest(t testing.TB, cfg Config) *ControlPlane {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = t.Name()
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	// No deadline here: a cold build may take many minutes (go test's
	// -timeout bounds it), and Start limits the start itself.
	cp, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("starting control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane %s logs:\n%s", cfg.Name, cp.LogTails(20))
		}
		if err := cp.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return cp
}
