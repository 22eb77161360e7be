package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// floorEnv, when set, makes this program the floor server instead of the bench: a bare net/http
// handler that answers every request with the bytes in the file it names (verify's success
// answer, captured from the real server in the same run). It runs in its own process, as the
// real server does, so it gets its own GOMAXPROCS and does not share a scheduler with the load.
const floorEnv = "TWOFOLD_BENCH_FLOOR_BODY"

func serveFloor(bodyFile string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("floor listening addr=http://%s\n", ln.Addr())
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
	}
	return srv.Serve(ln)
}

// startFloor re-executes this program as the floor server and returns its URL.
func startFloor(bodyFile string) (string, *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), floorEnv+"="+bodyFile)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "floor listening addr=")
	if !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, fmt.Errorf("floor server (%s with %s set) did not say it was listening: %q", exe, floorEnv, line)
	}
	return url, cmd, nil
}
