// Command pause is the infrastructure ("sandbox") container of every pod in
// the offline kind node image: it holds the pod's namespaces open, reaps the
// zombies it inherits as PID 1 of a shared PID namespace, and exits 0 on
// SIGINT or SIGTERM. It is the project's own small Go program (static, CGO
// off), tagged as the pause image kubeadm expects, because no pause image can
// be pulled here.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set with -ldflags "-X main.version=..." to the image tag.
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Printf("pause %s (injector-harness)\n", version)
		return
	}
	if os.Getpid() != 1 {
		// Like upstream pause: outside its own PID namespace it still works,
		// but the reaping duty belongs to someone else.
		fmt.Fprintln(os.Stderr, "pause: warning: not running as PID 1")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: shutting down, got signal %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every exited child without blocking; one SIGCHLD may stand
// for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
