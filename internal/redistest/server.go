package redistest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server of a test's own, for tests that restart Redis
// or lose its data, which the shared one must not. It keeps nothing on
// disk: a restart comes back empty, as a Redis without persistence does.
type Server struct {
	bin  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// MustServer starts a redis-server on a free port and stops it when the
// test ends. The test fails when redis-server is not on PATH (make test
// installs it).
func MustServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server is not on PATH (make test installs it): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{bin: bin, port: port}
	s.mustStart(tb)
	tb.Cleanup(func() { s.kill() })
	return s
}

// Addr is the server's address.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// MustRestart kills the server (SIGKILL) and starts it again on the same
// port, empty.
func (s *Server) MustRestart(tb testing.TB) {
	tb.Helper()
	s.kill()
	s.mustStart(tb)
}

func (s *Server) mustStart(tb testing.TB) {
	tb.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", tb.TempDir())
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := rdb.Ping(context.Background()).Err(); err == nil {
			return
		} else if time.Now().After(deadline) {
			tb.Fatalf("redistest: redis-server on %s does not answer: %v", s.Addr(), err)
		}
	}
}

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}
