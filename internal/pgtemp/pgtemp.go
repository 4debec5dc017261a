// Package pgtemp runs a throwaway PostgreSQL server for the embedded mode
// (`wuyoud dev`, CONTRACT §7.1): a fresh cluster in a temporary folder,
// listening on a free port on 127.0.0.1 and on a unix socket in that
// folder, with durability switched off. Stop removes every trace of it.
//
// It uses the server binaries already on the machine: initdb and pg_ctl on
// PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian and
// Ubuntu), /usr/pgsql-<version>/bin (RHEL) or /usr/local/pgsql/bin. When
// there are none, Start says in one line what to install.
//
// PostgreSQL refuses to run as root. Started by root, pgtemp runs initdb,
// pg_ctl and so the server as the `postgres` system user (which Debian's
// packages create), else as `nobody`: the children get that user's uid and
// gid directly (no runuser or su needed), and the temporary folder is
// handed to that user.
package pgtemp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is returned by Start when no PostgreSQL server binaries
// are found; its message says what to install.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL server binaries (Debian: apt-get install postgresql)")

// searchPatterns are where server binaries live when they are not on PATH.
var searchPatterns = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"}

// Database is the database Start creates; URL names it.
const Database = "wuyou"

// Server is a running throwaway PostgreSQL.
type Server struct {
	url    string
	dir    string // the temporary folder: data/, the socket, postgres.log
	binDir string
	runAs  *account
	log    *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// account is the OS user the server runs as when we are root.
type account struct {
	name     string
	uid, gid uint32
}

// Start creates, starts and returns a throwaway server with an empty
// database named Database; ctx bounds the start only. Stop it with Stop.
func Start(ctx context.Context, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	binDir, err := findBinDir(exec.LookPath, searchPatterns)
	if err != nil {
		return nil, err
	}
	s := &Server{binDir: binDir, log: log}
	if os.Geteuid() == 0 {
		if s.runAs, err = serverAccount(); err != nil {
			return nil, err
		}
	}
	if s.dir, err = os.MkdirTemp("", "wuyou-pg-*"); err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}
	if err := s.start(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	who := "this user"
	if s.runAs != nil {
		who = s.runAs.name
	}
	log.Info("started a throwaway PostgreSQL", "url", s.url, "dir", s.dir, "binaries", binDir, "runs_as", who)
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	if s.runAs != nil {
		if err := os.Chown(s.dir, int(s.runAs.uid), int(s.runAs.gid)); err != nil {
			return fmt.Errorf("pgtemp: hand %s to user %s: %w", s.dir, s.runAs.name, err)
		}
	}
	data := filepath.Join(s.dir, "data")
	// --no-sync: nothing here is meant to survive a crash, so skip the fsyncs.
	if out, err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fmt.Errorf("pgtemp: initdb: %w: %s", err, lastLines(out, 5))
	}
	conf := fmt.Sprintf("\n# pgtemp: a throwaway server for wuyoud dev\n"+
		"listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
		strings.ReplaceAll(s.dir, "'", "''"))
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		return fmt.Errorf("pgtemp: %w", err)
	}
	// A free port may be taken between choosing and binding it: try another.
	var port int
	var startErr error
	for range 3 {
		if port, startErr = freePort(); startErr != nil {
			return fmt.Errorf("pgtemp: %w", startErr)
		}
		var out []byte
		out, startErr = s.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(s.dir, "postgres.log"),
			"-o", "-p "+strconv.Itoa(port), "-w", "-t", "30", "start")
		if startErr == nil {
			break
		}
		startErr = fmt.Errorf("pgtemp: pg_ctl start: %w: %s %s", startErr, lastLines(out, 3), s.serverLog(5))
	}
	if startErr != nil {
		return startErr
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", port)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("pgtemp: connect to the new server: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
		return fmt.Errorf("pgtemp: create database %s: %w", Database, err)
	}
	s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, Database)
	return nil
}

// URL is the server's connection URL: user postgres (trust authentication,
// so no password), database Database, over TCP on 127.0.0.1.
func (s *Server) URL() string { return s.url }

// Dir is the temporary folder holding the cluster, its unix socket and its
// log (postgres.log); Stop removes it.
func (s *Server) Dir() string { return s.dir }

// Stop stops the server (fast shutdown: open sessions are ended) and
// removes its folder. Calling it again does nothing.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		data := filepath.Join(s.dir, "data")
		var errs []error
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			if out, err := s.run(ctx, "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
				errs = append(errs, fmt.Errorf("pgtemp: pg_ctl stop: %w: %s", err, lastLines(out, 3)))
				errs = append(errs, s.kill(data))
			}
		}
		if s.dir != "" {
			if err := os.RemoveAll(s.dir); err != nil {
				errs = append(errs, fmt.Errorf("pgtemp: %w", err))
			}
		}
		s.stopErr = errors.Join(errs...)
		if s.url != "" {
			s.log.Info("stopped the throwaway PostgreSQL", "dir", s.dir)
		}
	})
	return s.stopErr
}

// kill ends the server pg_ctl could not stop: SIGQUIT, the immediate
// shutdown, to the postmaster named in postmaster.pid.
func (s *Server) kill(data string) error {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil // no pid file: nothing is running
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return fmt.Errorf("pgtemp: unreadable postmaster.pid in %s", data)
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgtemp: kill postmaster %d: %w", pid, err)
	}
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pgtemp: postmaster %d did not exit", pid)
}

// run runs one of the server binaries as the server's user, in its folder,
// without the caller's PG* variables (they would redirect pg_ctl and initdb).
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
	if s.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.runAs.uid, Gid: s.runAs.gid, Groups: []uint32{}}}
		cmd.Env = append(cmd.Env, "HOME="+s.dir, "USER="+s.runAs.name, "LOGNAME="+s.runAs.name)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func (s *Server) serverLog(n int) string {
	b, err := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return ""
	}
	return "(postgres.log: " + lastLines(b, n) + ")"
}

// serverAccount is the OS user a root process runs PostgreSQL as.
func serverAccount() (*account, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtemp: PostgreSQL refuses to run as root and there is no postgres or nobody user to run it as: create one (useradd --system postgres) or run as another user")
}

// findBinDir is the folder holding both initdb and pg_ctl: initdb's on
// PATH (symbolic links followed) first, else the newest version matching
// patterns.
func findBinDir(lookPath func(string) (string, error), patterns []string) (string, error) {
	if p, err := lookPath("initdb"); err == nil {
		candidates := []string{filepath.Dir(p)}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append([]string{filepath.Dir(real)}, candidates...)
		}
		for _, dir := range candidates {
			if hasServerBinaries(dir) {
				return dir, nil
			}
		}
	}
	var dirs []string
	for _, pattern := range patterns {
		matches, _ := filepath.Glob(pattern)
		dirs = append(dirs, matches...)
	}
	slices.SortStableFunc(dirs, func(a, b string) int { return compareVersions(versionOf(b), versionOf(a)) })
	for _, dir := range dirs {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

var versionPattern = regexp.MustCompile(`\d+(?:\.\d+)*`)

// versionOf is the last version number in path (15 in
// /usr/lib/postgresql/15/bin, 9.6 in /usr/pgsql-9.6/bin), as numbers.
func versionOf(path string) []int {
	all := versionPattern.FindAllString(path, -1)
	if len(all) == 0 {
		return nil
	}
	var v []int
	for _, part := range strings.Split(all[len(all)-1], ".") {
		n, _ := strconv.Atoi(part)
		v = append(v, n)
	}
	return v
}

func compareVersions(a, b []int) int { return slices.Compare(a, b) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lastLines is the last n non-empty lines of out, joined, for one-line errors.
func lastLines(out []byte, n int) string {
	lines := strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' || r == '\r' })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
