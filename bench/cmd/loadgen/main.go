// Command loadgen sends GET requests at a fixed rate (open loop) and prints
// their latency percentiles: what wrk2 would measure, for the p99 at a given
// rate where wrk only measures at its maximum.
//
// Each request is due at start + i/rate and its latency is counted from when
// it was due, not from when it was sent, so a server that falls behind shows
// its queue in the figures instead of slowing the load down (coordinated
// omission). Requests rotate through the bearer tokens of -tokens, one a line.
//
// It prints "name number" lines: requests, errors, achieved_rps, p50_us,
// p90_us, p99_us, max_us.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wuyou/wuyou/bench/internal/openloop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type config struct {
	URL      string
	Tokens   string
	Rate     float64
	Duration time.Duration
	Conns    int
	Timeout  time.Duration
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.URL, "url", "", "the URL to GET (http only)")
	fs.StringVar(&c.Tokens, "tokens", "", "file of bearer tokens, one a line (empty: no Authorization header)")
	fs.Float64Var(&c.Rate, "rate", 0, "requests per second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send")
	fs.IntVar(&c.Conns, "conns", 32, "connections at most")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "a request not answered this long after it was due fails")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url must be an http URL, got %q", c.URL)
	}
	if c.Rate <= 0 || c.Duration <= 0 || c.Conns <= 0 {
		return errors.New("-rate, -duration and -conns must be positive")
	}
	var auth []string
	if c.Tokens != "" {
		tokens, err := openloop.ReadLines(c.Tokens)
		if err != nil {
			return err
		}
		if len(tokens) == 0 {
			return fmt.Errorf("%s: no tokens", c.Tokens)
		}
		for _, t := range tokens {
			auth = append(auth, "Bearer "+t)
		}
	}

	client := &fasthttp.HostClient{
		Addr:               u.Host,
		MaxConns:           c.Conns,
		MaxConnWaitTimeout: c.Timeout, // wait for a free connection: that wait is latency too
		ReadTimeout:        c.Timeout,
		WriteTimeout:       c.Timeout,
	}
	var failed atomic.Int64
	latencies, sending := openloop.Run(ctx, c.Rate, c.Duration, func(i int, due time.Time) {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(c.URL)
		if len(auth) > 0 {
			req.Header.Set("Authorization", auth[i%len(auth)])
		}
		if err := client.DoDeadline(req, res, due.Add(c.Timeout)); err != nil || res.StatusCode() != fasthttp.StatusOK {
			failed.Add(1)
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(latencies) == 0 {
		return errors.New("nothing sent")
	}
	m := openloop.Percentiles("", latencies)
	fmt.Fprintf(stdout, "requests %d\n", len(latencies))
	fmt.Fprintf(stdout, "errors %d\n", failed.Load())
	fmt.Fprintf(stdout, "achieved_rps %.1f\n", float64(len(latencies))/sending.Seconds())
	for _, name := range []string{"p50_us", "p90_us", "p99_us", "max_us"} {
		fmt.Fprintf(stdout, "%s %d\n", name, int64(m[name]))
	}
	return nil
}
