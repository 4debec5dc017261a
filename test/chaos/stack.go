package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/carrier"
)

// This file holds the three processes the harness runs and breaks: a
// redis-server with an append-only file, an in-process Kafka-protocol
// broker that keeps its log on disk, and wuyoud itself.

// ---- redis-server --------------------------------------------------------

// redisServer is one redis-server process writing its AOF to dir. Killed
// and started again, it keeps its port and its directory, so it comes back
// with whatever its AOF holds.
type redisServer struct {
	bin, dir, fsync string
	port            int
	cmd             *exec.Cmd
	done            chan struct{}
	starts          int

	mu      sync.Mutex
	samples []aofSample // the AOF's recent sizes, newest last
}

// aofSample is the size of the AOF's open increment file at one moment.
type aofSample struct {
	at   time.Time
	path string
	size int64
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server and waits until it answers PING (after it has
// loaded its AOF).
func (r *redisServer) start(ctx context.Context) error {
	logPath := filepath.Join(r.dir, fmt.Sprintf("redis-%d.log", r.starts))
	r.starts++
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--appendonly", "yes", "--appendfsync", r.fsync,
		"--dir", r.dir, "--save", "", "--logfile", logPath,
		// No AOF rewrite during a run, so the increment file a power loss
		// cuts back is the one the samples measured.
		"--auto-aof-rewrite-percentage", "0")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	done := r.done
	go func() { _ = cmd.Wait(); close(done) }()
	rdb := redis.NewClient(&redis.Options{Addr: r.addr(), DialTimeout: time.Second, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited during start-up; see %s", logPath)
		default:
		}
		if err := rdb.Ping(ctx).Err(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s does not answer PING: %w", r.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the running server.
func (r *redisServer) signal(sig syscall.Signal) error { return r.cmd.Process.Signal(sig) }

// kill sends SIGKILL and waits until the process is gone.
func (r *redisServer) kill() error {
	if err := r.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("redis-server survived SIGKILL for 10s")
	}
}

// sampleAOF records the size of the AOF's open increment file every 50ms
// until stop is closed, keeping the last 5s.
func (r *redisServer) sampleAOF(stop <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			path := r.aofIncrement()
			fi, err := os.Stat(path)
			if err != nil {
				continue
			}
			r.mu.Lock()
			r.samples = append(r.samples, aofSample{at: now, path: path, size: fi.Size()})
			for len(r.samples) > 0 && now.Sub(r.samples[0].at) > 5*time.Second {
				r.samples = r.samples[1:]
			}
			r.mu.Unlock()
		}
	}
}

// aofIncrement is the newest increment file of the multi-part AOF (Redis 7).
func (r *redisServer) aofIncrement() string {
	paths, _ := filepath.Glob(filepath.Join(r.dir, "appendonlydir", "*.incr.aof"))
	var newest string
	var newestMod time.Time
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.ModTime().Before(newestMod) {
			newest, newestMod = p, fi.ModTime()
		}
	}
	return newest
}

// powerLoss emulates the machine losing power under appendfsync everysec:
// SIGKILL, then the AOF is cut back to the size it had lag ago — what the
// kernel had been handed but not yet fsynced. (A plain SIGKILL loses
// nothing Redis acknowledged: its write(2) reached the page cache, which
// survives the process.) It returns the bytes cut.
func (r *redisServer) powerLoss(lag time.Duration) (int64, error) {
	if err := r.kill(); err != nil {
		return 0, err
	}
	cut := time.Now().Add(-lag)
	r.mu.Lock()
	var at *aofSample
	for i := range r.samples {
		if !r.samples[i].at.After(cut) {
			at = &r.samples[i]
		}
	}
	r.mu.Unlock()
	if at == nil {
		return 0, errors.New("no AOF size sampled that long ago")
	}
	fi, err := os.Stat(at.path)
	if err != nil {
		return 0, err
	}
	if fi.Size() <= at.size {
		return 0, nil
	}
	return fi.Size() - at.size, os.Truncate(at.path, at.size)
}

// stop ends the server for good (SIGCONT first, in case it is paused).
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.signal(syscall.SIGCONT)
	_ = r.kill()
}

// ---- the broker ----------------------------------------------------------

// broker is an in-process kfake cluster on a fixed port with a data
// directory: restarting it closes the cluster (which saves its state) and
// opens a new one on the same port and directory, which reloads its topics,
// their logs and the consumer group's committed offsets.
type broker struct {
	port       int
	dir        string
	partitions int32
	topics     carrier.Topics
	cluster    *kfake.Cluster
}

func (b *broker) addrs() []string { return []string{"127.0.0.1:" + strconv.Itoa(b.port)} }

func (b *broker) start() error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		b.cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(b.port), kfake.DataDir(b.dir),
			kfake.SeedTopics(b.partitions, b.topics.Usage), kfake.SeedTopics(1, b.topics.All()[1:]...))
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // the port may linger a moment after Close
	}
	return fmt.Errorf("kfake broker on port %d: %w", b.port, err)
}

func (b *broker) stop() {
	if b.cluster != nil {
		b.cluster.Close()
		b.cluster = nil
	}
}

// committedBehind is how many messages of the usage topic the group has
// not committed yet.
func (b *broker) committedBehind(ctx context.Context, group string) (int64, error) {
	ends, err := endOffsets(ctx, b.addrs(), b.topics.Usage, int(b.partitions))
	if err != nil {
		return 0, err
	}
	info := b.cluster.GroupInfo(group)
	var behind int64
	for p, end := range ends {
		var committed int64
		if info != nil {
			if c, ok := info.Commits[b.topics.Usage][int32(p)]; ok {
				committed = c.Offset
			}
		}
		behind += max(0, end-committed)
	}
	return behind, nil
}

// removeMembers removes every member of the group, as an orchestrator
// does for a killed instance, so its successor need not wait for the
// session timeout.
func (b *broker) removeMembers(ctx context.Context, group string) error {
	info := b.cluster.GroupInfo(group)
	if info == nil || len(info.Members) == 0 {
		return nil
	}
	req := &kafka.LeaveGroupRequest{Addr: kafka.TCP(b.addrs()...), GroupID: group}
	for _, m := range info.Members {
		req.Members = append(req.Members, kafka.LeaveGroupRequestMember{ID: m.MemberID})
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := (&kafka.Client{}).LeaveGroup(ctx, req)
	if err != nil {
		return err
	}
	return res.Error
}

// endOffsets returns each partition's end offset.
func endOffsets(ctx context.Context, brokers []string, topic string, partitions int) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := make([]int64, partitions)
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			return nil, err
		}
		end, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			return nil, err
		}
		out[p] = end
	}
	return out, nil
}

// ---- wuyoud --------------------------------------------------------------

// wuyoud is one running wuyoud subprocess.
type wuyoud struct {
	cmd     *exec.Cmd
	base    string
	logPath string
	done    chan struct{}
	waitErr error
}

// wuyoudRunner starts wuyoud processes from one binary with one
// environment, and keeps every process's log.
type wuyoudRunner struct {
	bin, dir string
	env      map[string]string
	logs     []string
}

// start runs wuyoud on a free port and waits until it answers /healthz; a
// process that exits during start-up (a port taken meanwhile, Redis still
// loading) is started again.
func (w *wuyoudRunner) start(ctx context.Context) (*wuyoud, error) {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		p, err := w.startOnce(ctx)
		if err == nil {
			return p, nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return nil, last
}

func (w *wuyoudRunner) startOnce(ctx context.Context) (*wuyoud, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(w.dir, fmt.Sprintf("wuyoud-%d.log", len(w.logs)))
	w.logs = append(w.logs, logPath)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(w.bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "WUYOU_HTTP_ADDR=" + addr}
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &wuyoud{cmd: cmd, base: "http://" + addr, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("wuyoud exited during start-up (%v):\n%s", p.waitErr, tail(logPath))
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		default:
		}
		if p.healthy() {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("wuyoud did not answer /healthz within a minute:\n%s", tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *wuyoud) healthy() bool {
	res, err := probeHTTP.Get(p.base + "/healthz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *wuyoud) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM and waits up to timeout for a clean exit.
func (p *wuyoud) terminate(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("wuyoud did not stop within %s of SIGTERM", timeout)
	}
}

// problems lists the logs that report a panic or a fatal error.
func (w *wuyoudRunner) problems() []string {
	var out []string
	for _, path := range w.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, bad := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
			if bytes.Contains(b, []byte(bad)) {
				out = append(out, fmt.Sprintf("%s reports %q", path, bad))
			}
		}
	}
	return out
}

var probeHTTP = &http.Client{Timeout: 2 * time.Second}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freePort() (int, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
