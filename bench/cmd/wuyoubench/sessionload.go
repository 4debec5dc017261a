package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wuyou/wuyou/bench/internal/openloop"
)

// The load client of `wuyoubench sessions`, run as a process of its own
// (`wuyoubench sessionload`, as wrk and loadgen are for the allowance), so
// that its CPU is not the server's. One client for every figure of the
// line: the allowance reads it compares the session pairs with are sent by
// the same code, on the same connections.
//
// Modes:
//
//	get    closed loop: each connection GETs -path with the next bearer token
//	       of -tokens, again and again, for -duration (wrk's way)
//	pairs  closed loop: each connection opens a session (POST
//	       /v1/carrier/sessions, a new session id each time, the next MSISDN
//	       of -msisdns) and terminates it (POST …/{id}:terminate), again and
//	       again; a pair is both
//	opens  opens only; closed loop, or at a fixed rate (open loop) with
//	       -rate: each open is due at start + i/rate and its latency counted
//	       from then, so a server falling behind shows its queue (as
//	       bench/cmd/loadgen and wrk2 do)
//
// It prints "name number" lines: requests, errors, rps, p50_us, p99_us
// (pairs: of a pair, and open_p50_us, open_p99_us, terminate_p50_us,
// terminate_p99_us), achieved_rps (open loop), max_us, and first_error (a
// status and body) when any request failed.

type sessionLoadConfig struct {
	URL       string
	Mode      string
	Path      string
	Tokens    string
	MSISDNs   string
	Conns     int
	Duration  time.Duration
	Rate      float64
	Requested int64
	Used      int64
	Visited   string
	Timeout   time.Duration
}

func runSessionLoad(ctx context.Context, args []string, stdout io.Writer) error {
	var c sessionLoadConfig
	fs := flag.NewFlagSet("sessionload", flag.ContinueOnError)
	fs.StringVar(&c.URL, "url", "", "the server's base URL (http only)")
	fs.StringVar(&c.Mode, "mode", "pairs", "get, pairs or opens")
	fs.StringVar(&c.Path, "path", allowancePath, "get: the path to GET")
	fs.StringVar(&c.Tokens, "tokens", "", "file of bearer tokens, one a line; pairs and opens use the first")
	fs.StringVar(&c.MSISDNs, "msisdns", "", "pairs, opens: file of the MSISDNs to open sessions for, one a line, taken in turn")
	fs.IntVar(&c.Conns, "conns", 32, "connections (closed loop: each sends its next request when the last is answered)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send")
	fs.Float64Var(&c.Rate, "rate", 0, "opens: requests per second, open loop (0: closed loop)")
	fs.Int64Var(&c.Requested, "requested", 60, "units each open asks for")
	fs.Int64Var(&c.Used, "used", 45, "units each terminate reports used")
	fs.StringVar(&c.Visited, "visited", "SG", "visited_country of the calls (abroad, so they draw from the grants)")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "a request not answered this long after it was due fails")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url must be an http URL, got %q", c.URL)
	}
	if c.Conns <= 0 || c.Duration <= 0 || c.Rate < 0 {
		return errors.New("-conns and -duration must be positive, -rate not negative")
	}
	tokens, err := openloop.ReadLines(c.Tokens)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		return fmt.Errorf("-tokens %q: no tokens", c.Tokens)
	}
	auth := make([]string, len(tokens))
	for i, t := range tokens {
		auth[i] = "Bearer " + t
	}
	var msisdns []string
	if c.Mode != "get" {
		if msisdns, err = openloop.ReadLines(c.MSISDNs); err != nil {
			return err
		}
		if len(msisdns) == 0 {
			return fmt.Errorf("-msisdns %q: no MSISDNs", c.MSISDNs)
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	l := &sessionLoad{
		c: c, auth: auth, msisdns: msisdns, idPrefix: "bs-" + hex.EncodeToString(b) + "-",
		client: &fasthttp.HostClient{
			Addr: u.Host, MaxConns: c.Conns, MaxConnWaitTimeout: c.Timeout,
			ReadTimeout: c.Timeout, WriteTimeout: c.Timeout,
		},
	}
	started := time.Now()
	var m map[string]float64
	switch {
	case c.Mode == "opens" && c.Rate > 0:
		m, err = l.openLoop(ctx)
	case c.Mode == "get" || c.Mode == "pairs" || c.Mode == "opens":
		m, err = l.closedLoop(ctx)
	default:
		return fmt.Errorf("-mode must be get, pairs or opens, got %q", c.Mode)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		m["cpu_s"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	m["wall_s"] = time.Since(started).Seconds()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "%s %s\n", k, strconv.FormatFloat(m[k], 'f', -1, 64))
	}
	if e := l.firstError.Load(); e != nil {
		fmt.Fprintf(stdout, "first_error %s\n", oneLine(*e))
	}
	return nil
}

type sessionLoad struct {
	c          sessionLoadConfig
	auth       []string
	msisdns    []string
	idPrefix   string
	client     *fasthttp.HostClient
	next       atomic.Int64 // the next session's number (and MSISDN's turn)
	failed     atomic.Int64
	firstError atomic.Pointer[string]
}

// fail counts a failed request and keeps the first failure's description.
func (l *sessionLoad) fail(what string, err error, res *fasthttp.Response) {
	l.failed.Add(1)
	var s string
	if err != nil {
		s = what + ": " + err.Error()
	} else {
		body := res.Body()
		s = fmt.Sprintf("%s: %d %s", what, res.StatusCode(), body[:min(len(body), 300)])
	}
	l.firstError.CompareAndSwap(nil, &s)
}

// do sends one request and says whether it got the status wanted.
func (l *sessionLoad) do(what, method, path string, body []byte, auth string, want int, deadline time.Time) bool {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI(l.c.URL + path)
	req.Header.SetMethod(method)
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
	}
	err := l.client.DoDeadline(req, res, deadline)
	if err != nil || res.StatusCode() != want {
		l.fail(what, err, res)
		return false
	}
	return true
}

// open opens the next session and returns its id.
func (l *sessionLoad) open(deadline time.Time) (string, bool) {
	n := l.next.Add(1) - 1
	id := l.idPrefix + strconv.FormatInt(n, 10)
	msisdn := l.msisdns[n%int64(len(l.msisdns))]
	body := fmt.Appendf(nil, `{"session_id":%q,"msisdn":%q,"unit":"seconds","requested":%d,"call_time":%q,"visited_country":%q,"called_number":"+6561234567"}`,
		id, msisdn, l.c.Requested, time.Now().UTC().Format(time.RFC3339), l.c.Visited)
	return id, l.do("open", fasthttp.MethodPost, "/v1/carrier/sessions", body, l.auth[0], fasthttp.StatusCreated, deadline)
}

func (l *sessionLoad) terminate(id string, deadline time.Time) bool {
	body := fmt.Appendf(nil, `{"used":%d}`, l.c.Used)
	return l.do("terminate", fasthttp.MethodPost, "/v1/carrier/sessions/"+id+":terminate", body, l.auth[0], fasthttp.StatusOK, deadline)
}

// closedLoop runs -conns workers, each sending its next request (or pair)
// when the last is answered, for -duration.
func (l *sessionLoad) closedLoop(ctx context.Context) (map[string]float64, error) {
	type worker struct{ total, opens, terms []time.Duration }
	workers := make([]worker, l.c.Conns)
	start := time.Now()
	end := start.Add(l.c.Duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(w *worker, i int) {
			defer wg.Done()
			for n := i; ctx.Err() == nil; n += len(workers) {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				deadline := t0.Add(l.c.Timeout)
				switch l.c.Mode {
				case "get":
					if !l.do("get", fasthttp.MethodGet, l.c.Path, nil, l.auth[n%len(l.auth)], fasthttp.StatusOK, deadline) {
						continue
					}
				case "opens":
					if _, ok := l.open(deadline); !ok {
						continue
					}
				case "pairs":
					id, ok := l.open(deadline)
					if !ok {
						continue
					}
					t1 := time.Now()
					if !l.terminate(id, t1.Add(l.c.Timeout)) {
						continue
					}
					w.opens = append(w.opens, t1.Sub(t0))
					w.terms = append(w.terms, time.Since(t1))
				}
				w.total = append(w.total, time.Since(t0))
			}
		}(&workers[w], w)
	}
	wg.Wait()
	wall := time.Since(start)
	var total, opens, terms []time.Duration
	for _, w := range workers {
		total, opens, terms = append(total, w.total...), append(opens, w.opens...), append(terms, w.terms...)
	}
	if len(total) == 0 {
		return nil, fmt.Errorf("no request succeeded (%d failed): %s", l.failed.Load(), l.firstErrorText())
	}
	m := openloop.Percentiles("", total)
	m["requests"] = float64(len(total))
	m["errors"] = float64(l.failed.Load())
	m["rps"] = float64(len(total)) / wall.Seconds()
	if l.c.Mode == "pairs" {
		for k, v := range openloop.Percentiles("open_", opens) {
			m[k] = v
		}
		for k, v := range openloop.Percentiles("terminate_", terms) {
			m[k] = v
		}
	}
	return m, nil
}

// openLoop sends opens at -rate, each on a goroutine of its own when due,
// on at most -conns connections; a wait for a connection is latency too.
func (l *sessionLoad) openLoop(ctx context.Context) (map[string]float64, error) {
	latencies, sending := openloop.Run(ctx, l.c.Rate, l.c.Duration, func(_ int, due time.Time) {
		l.open(due.Add(l.c.Timeout))
	})
	if len(latencies) == 0 {
		return nil, errors.New("nothing sent")
	}
	m := openloop.Percentiles("", latencies)
	m["requests"] = float64(len(latencies))
	m["errors"] = float64(l.failed.Load())
	m["achieved_rps"] = float64(len(latencies)) / sending.Seconds()
	return m, nil
}

func (l *sessionLoad) firstErrorText() string {
	if e := l.firstError.Load(); e != nil {
		return *e
	}
	return ""
}
