package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The registry is a directory of small JSON records, one per running control
// plane, naming the owning process and the children it started. Children die
// with their owner through the parent-death signal; the registry is the
// fallback for what that cannot cover (another OS, a SIGKILLed owner whose
// children were re-parented before the signal was armed), and it also removes
// the temp dirs of crashed runs.
type record struct {
	OwnerPID   int           `json:"ownerPID"`
	OwnerStart string        `json:"ownerStart"` // /proc start time, guards against PID reuse
	Dir        string        `json:"dir"`
	RemoveDir  bool          `json:"removeDir"`
	Processes  []recordEntry `json:"processes"`
}

type recordEntry struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Path string `json:"path"`
}

func defaultRegistryDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("vidra-controlplane-%d", os.Getuid()))
}

func writeRecord(path string, rec record) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating registry dir: %w", err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding registry record: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing registry record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing registry record: %w", err)
	}
	return nil
}

// cleanStale kills the processes and removes the dirs recorded by control
// planes whose owner is gone. A recorded PID is only signalled while its
// command line still starts with the recorded harness binary, so a PID reused
// by an unrelated process is never touched. It returns what it killed.
func cleanStale(registryDir string) (killed []string, err error) {
	if _, ok := procStartTime(os.Getpid()); !ok {
		return nil, nil // no /proc: liveness cannot be told, so touch nothing
	}
	entries, err := os.ReadDir(registryDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry %s: %w", registryDir, err)
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(registryDir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue // removed by its owner or a concurrent cleaner
		}
		var rec record
		if err := json.Unmarshal(data, &rec); err != nil {
			errs = append(errs, fmt.Errorf("registry record %s: %w", path, err))
			continue
		}
		if start, ok := procStartTime(rec.OwnerPID); ok && start == rec.OwnerStart {
			continue // owner still running: its control plane is live
		}
		for _, p := range rec.Processes {
			if !cmdlineMatches(p.PID, p.Path) {
				continue
			}
			// The child leads its own process group (Setpgid).
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
			killed = append(killed, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
		}
		if rec.RemoveDir && rec.Dir != "" {
			if err := os.RemoveAll(rec.Dir); err != nil {
				errs = append(errs, fmt.Errorf("removing stale dir: %w", err))
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing registry record: %w", err))
		}
	}
	return killed, errors.Join(errs...)
}

// procStartTime returns the start time of pid (field 22 of /proc/pid/stat,
// in clock ticks since boot), which together with the PID identifies a
// process uniquely.
func procStartTime(pid int) (string, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", false
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", false
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return "", false
	}
	return fields[19], true
}

// cmdlineMatches reports whether pid is running binary path (argv[0]; the
// harness always starts children by absolute path).
func cmdlineMatches(pid int, path string) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(data) == 0 {
		return false
	}
	argv0, _, _ := strings.Cut(string(data), "\x00")
	return argv0 == path
}
