package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// privateRedis is a redis-server this program started for itself, on a free
// port, with persistence off: INFO and commandstats then count this
// measurement's keys and commands only, not other people's.
type privateRedis struct {
	cmd  *exec.Cmd
	addr string
}

// startRedis starts redis-server from PATH and waits until it answers.
func startRedis(ctx context.Context) (*privateRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not on PATH: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir, err := os.MkdirTemp("", "wuyoubench-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &privateRedis{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: time.Second})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, errors.New("redis-server did not answer within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server this program started (and only it).
func (r *privateRedis) stop() {
	if r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	if d := r.cmd.Args; len(d) > 0 {
		for i, a := range d {
			if a == "--dir" && i+1 < len(d) {
				_ = os.RemoveAll(d[i+1])
			}
		}
	}
}
