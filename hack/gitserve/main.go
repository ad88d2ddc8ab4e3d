// Command gitserve serves the bare repositories under -root, read-only,
// over Git's smart HTTP protocol through `git http-backend` (Debian's git,
// see hack/git.sh). make demo runs it as the local Git server a GitSync
// reads; it logs the address it listens on.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	root := flag.String("root", "", "directory holding the bare repositories <name>.git")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if *root == "" {
		log.Fatal("gitserve: -root is required")
	}
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		log.Fatalf("gitserve: git --exec-path: %v (run hack/git.sh)", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + *root, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + os.TempDir()},
	}
	readOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack" {
			http.Error(w, "read-only", http.StatusForbidden)
			return
		}
		backend.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("gitserve: %v", err)
	}
	fmt.Printf("git server listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, readOnly))
}
