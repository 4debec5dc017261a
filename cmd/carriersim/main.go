// Command carriersim plays the mobile carrier: it produces call records
// (CDRs) to carrier.usage.v1 the way the carrier does, CloudEvents JSON keyed
// by MSISDN, at a chosen rate and with a chosen share of faults
// (redeliveries, late, out-of-order and malformed events). At the end it
// prints what it sent and what Wuyou should have made of it, per MSISDN, so
// a test can compare balances with it.
//
//	carriersim --brokers kafka:9092 --rate 50/s --msisdn-range +8613800000001-+8613800000100 --duplicates 0.05
//
// Events are identified by source and id (cdr-<seq>, from --first-seq): a
// second run against the same Wuyou sends the same ids again, which Wuyou
// drops as duplicates, unless it uses another --source or --first-seq.
//
// With --sessions it also plays the carrier's real-time credit control
// (CONTRACT §7.3): each new voice call first goes through Wuyou's session
// API (--server, --token of role carrier), then its CDR, whose
// data.call_id is the session id, goes to Kafka and settles the session.
//
//	carriersim --sessions --server http://localhost:8080 --token "$CARRIER_TOKEN" --msisdn-range +8613800000001-+8613800000003 --count 20
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"net/http"
	"net/url"

	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"

	"github.com/wuyou/wuyou/carrier/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runEnv(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "carriersim:", err)
		os.Exit(1)
	}
}

// errUsage is returned for bad flags, after the flag package has said why.
var errUsage = errors.New("usage")

// options is the parsed command line.
type options struct {
	brokers     []string
	topic       string  // with the prefix
	rate        float64 // events per second; 0 = as fast as the broker takes them
	count       int64   // 0 = until interrupted or --duration is up
	duration    time.Duration
	start       time.Time // zero: call times follow the wall clock
	step        time.Duration
	batch       int
	brokerWait  time.Duration
	summaryPath string
	sim         sim.Config
	sessions    sessionOptions
}

// sessionOptions say how calls go through the session API (--sessions).
type sessionOptions struct {
	on      bool
	server  string  // base URL of wuyoud
	token   string  // bearer token of role carrier
	share   float64 // of new voice calls
	workers int     // calls driven at once
}

// Environment variables behind --server and --token, as wuyouctl reads them.
const (
	envServer     = "WUYOU_SERVER"
	envToken      = "WUYOU_TOKEN"
	defaultServer = "http://localhost:8080"
)

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("carriersim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `carriersim produces simulated carrier CDR events to Kafka and prints the
totals Wuyou should end up with.

usage: carriersim --brokers HOST:PORT[,...] (--msisdn-range +FIRST-+LAST | --seafarers FILE) [flags]
       carriersim --sessions --server URL --token CARRIER_TOKEN ... [flags]

With --sessions each new voice call first goes through Wuyou's real-time
session API (CONTRACT 7.3): open asking for 60 s, an update every minute of
the call with the usage so far, a terminate with its duration (a call whose
final grant runs out is cut there when Wuyou's final action is terminate);
then its CDR, data.call_id = the session id, goes to Kafka and settles the
session. Simulated minutes pass as fast as the API answers. The summary's
"sessions" counts sessions opened, final grants, cut calls, terminates and
CDRs sent. A number no seafarer holds gets no session (404): its CDR alone
is sent. Redeliveries, late events, SMS and data go to Kafka only.

`)
		fs.PrintDefaults()
	}
	def := sim.DefaultConfig()
	var (
		o                                   options
		brokers, rateS, startS, msisdnRange string
		seafarers, topic, topicPrefix       string
	)
	o.sim = def
	c := &o.sim
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&topic, "topic", "carrier.usage.v1", "topic to produce to")
	fs.StringVar(&topicPrefix, "topic-prefix", "", "prefix prepended to the topic (as WUYOU_TOPIC_PREFIX)")
	fs.StringVar(&rateS, "rate", "100/s", "events per second: N/s, N/m or N/h; 0 or max = as fast as possible")
	fs.Int64Var(&o.count, "count", 0, "stop after N events (0 = until interrupted or --duration is up)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = no limit)")
	fs.StringVar(&seafarers, "seafarers", "", "file of MSISDNs, one a line, or a CSV with an msisdn column")
	fs.StringVar(&msisdnRange, "msisdn-range", "", "MSISDNs to simulate, e.g. +8613800000001-+8613800000100")
	fs.Float64Var(&c.Duplicates, "duplicates", 0, "fraction of events sent again byte for byte")
	fs.Float64Var(&c.Late, "late", 0, "fraction of events with a call time older than --late-age")
	fs.DurationVar(&c.LateAge, "late-age", def.LateAge, "how old late events are (at least): beyond Wuyou's dedupe window")
	fs.Float64Var(&c.Reorder, "reorder", 0, "fraction of events whose call time is up to 1h before their neighbours'")
	fs.Float64Var(&c.Malformed, "malformed", 0, "fraction of garbage, truncated or invalid events")
	fs.Float64Var(&c.VoiceShare, "voice-share", def.VoiceShare, "share of valid events that are voice calls; the rest are SMS and data")
	fs.StringVar(&c.Home, "home", def.Home, "home country (ISO 3166 alpha-2): calls visiting it are domestic")
	fs.Int64Var(&c.Seed, "seed", def.Seed, "random seed: the same seed and flags send the same events")
	fs.StringVar(&c.Source, "source", def.Source, "CloudEvents source of the events")
	fs.Int64Var(&c.FirstSeq, "first-seq", def.FirstSeq, "sequence number of the first event id (cdr-<seq>)")
	fs.StringVar(&startS, "start", "", "call time of the first event (RFC 3339); call times then advance by --step (default: the wall clock)")
	fs.DurationVar(&o.step, "step", 0, "with --start, call time between events (default 1/rate, 1s at max rate)")
	fs.IntVar(&o.batch, "batch", 500, "most events per produce request")
	fs.DurationVar(&o.brokerWait, "broker-wait", 30*time.Second, "how long to retry while the broker is unreachable or lacks the topic")
	fs.StringVar(&o.summaryPath, "summary", "", "also write the JSON summary to this file")
	fs.BoolVar(&o.sessions.on, "sessions", false, "put new voice calls through Wuyou's session API (--server, --token) before their CDRs")
	fs.StringVar(&o.sessions.server, "server", defaultServer, "with --sessions: Wuyou API base URL (env "+envServer+")")
	// The token's default is not shown in --help: it is a secret.
	fs.StringVar(&o.sessions.token, "token", "", "with --sessions: bearer token of role carrier (env "+envToken+"; wuyoud dev prints one as CARRIER_TOKEN)")
	fs.Float64Var(&o.sessions.share, "session-share", 1, "with --sessions: fraction of new voice calls that go through sessions (the rest send their CDR only)")
	fs.IntVar(&o.sessions.workers, "session-workers", 8, "with --sessions: calls of a batch driven through the API at once")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	bad := func(format string, args ...any) (options, error) {
		fmt.Fprintf(stderr, "carriersim: "+format+"\n", args...)
		fs.Usage()
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if so := &o.sessions; so.on {
		if v := getenv(envServer); v != "" && !given["server"] {
			so.server = v
		}
		if v := getenv(envToken); v != "" && !given["token"] {
			so.token = v
		}
		if u, err := url.Parse(so.server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("--server: want the API's base URL, such as %s", defaultServer)
		}
		if so.token == "" {
			return bad("--sessions needs a carrier token: pass --token or set %s (wuyoud dev prints one as CARRIER_TOKEN)", envToken)
		}
		if math.IsNaN(so.share) || so.share < 0 || so.share > 1 {
			return bad("--session-share must be between 0 and 1")
		}
		if so.workers < 1 {
			return bad("--session-workers must be positive")
		}
	} else {
		for _, name := range []string{"server", "token", "session-share", "session-workers"} {
			if given[name] {
				return bad("--%s is for --sessions", name)
			}
		}
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.brokers = append(o.brokers, b)
		}
	}
	if len(o.brokers) == 0 {
		return bad("--brokers: need at least one host:port")
	}
	o.topic = topicPrefix + topic
	var err error
	if o.rate, err = parseRate(rateS); err != nil {
		return bad("--rate: %v", err)
	}
	if o.count < 0 || o.duration < 0 || o.step < 0 || o.brokerWait < 0 || o.batch < 1 {
		return bad("--count, --duration, --step and --broker-wait must not be negative, --batch must be positive")
	}
	if startS != "" {
		if o.start, err = time.Parse(time.RFC3339, startS); err != nil {
			return bad("--start: want an RFC 3339 time such as 2026-11-28T10:00:00Z")
		}
		if o.step == 0 {
			o.step = time.Second
			if o.rate > 0 {
				o.step = time.Duration(float64(time.Second) / o.rate)
			}
		}
	}
	switch {
	case seafarers != "" && msisdnRange != "":
		return bad("give --seafarers or --msisdn-range, not both")
	case seafarers != "":
		f, err := os.Open(seafarers)
		if err != nil {
			return bad("--seafarers: %v", err)
		}
		c.MSISDNs, err = sim.ReadMSISDNs(f)
		f.Close()
		if err != nil {
			return bad("--seafarers %s: %v", seafarers, err)
		}
	case msisdnRange != "":
		if c.MSISDNs, err = sim.ParseMSISDNRange(msisdnRange); err != nil {
			return bad("--msisdn-range: %v", err)
		}
	default:
		return bad("say whose calls to simulate: --seafarers FILE or --msisdn-range +FIRST-+LAST")
	}
	if err := c.Validate(); err != nil {
		return bad("%v", err)
	}
	return o, nil
}

// parseRate reads "200/s", "30/m", "1000/h", "200", "0" or "max" as events
// per second; 0 means as fast as possible.
func parseRate(s string) (float64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "max" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want N/s, N/m, N/h, 0 or max", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "s", "sec", "second":
		return n, nil
	case "m", "min", "minute":
		return n / 60, nil
	case "h", "hour":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("%q: unknown unit, want /s, /m or /h", s)
}

// report is the summary carriersim prints at the end.
type report struct {
	Topic          string    `json:"topic"`
	Brokers        []string  `json:"brokers"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	EventsPerSec   float64   `json:"events_per_second"`
	// Stopped says why the run ended: count, duration, interrupted or error.
	Stopped string `json:"stopped"`
	Error   string `json:"error,omitempty"`
	*sim.Summary
}

// run is runEnv with no environment variable set.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, func(string) string { return "" }, stdout, stderr)
}

// runEnv produces events until --count or --duration is reached or ctx is
// cancelled, then prints the summary. Only messages the broker acknowledged
// (acks=all) are counted in it, so it stays true when a run stops part way.
//
// With --sessions, each batch's new voice calls go through the session API
// before the batch is written, so a call's terminate comes before its CDR.
// A session API error stops the run after that batch is written: the CDRs
// of calls whose sessions failed half way settle them.
func runEnv(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	stderr = &syncWriter{w: stderr} // kafka-go logs from its own goroutines
	o, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	gen, err := sim.New(o.sim)
	if err != nil {
		return err
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(o.brokers...),
		Topic:        o.topic,
		Balancer:     &kafka.Hash{}, // key = MSISDN: one subscriber's calls stay in order on one partition
		RequiredAcks: kafka.RequireAll,
		BatchSize:    o.batch,
		BatchTimeout: 5 * time.Millisecond,
		Async:        false,
		WriteTimeout: 10 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			fmt.Fprintf(stderr, "carriersim: kafka: "+msg+"\n", args...)
		}),
	}

	runCtx := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	// Each produce request carries perBatch events: about 50ms worth at the
	// chosen rate, so low rates stay smooth and high ones are batched.
	perBatch := o.batch
	var limiter *rate.Limiter
	if o.rate > 0 {
		perBatch = min(max(int(o.rate/20), 1), o.batch)
		limiter = rate.NewLimiter(rate.Limit(o.rate), perBatch)
	}

	fmt.Fprintf(stderr, "carriersim: producing to %s on %s, rate %s, %d MSISDNs, seed %d\n",
		o.topic, strings.Join(o.brokers, ","), rateString(o.rate), len(o.sim.MSISDNs), o.sim.Seed)

	var sessions *sim.SessionRunner
	if o.sessions.on {
		sessions = &sim.SessionRunner{
			Driver: &sim.Driver{API: &sim.HTTPSessions{Base: o.sessions.server, Token: o.sessions.token,
				Client: &http.Client{Timeout: 30 * time.Second}}},
			Share: o.sessions.share, Workers: o.sessions.workers,
		}
		fmt.Fprintf(stderr, "carriersim: voice calls go through the session API at %s first (share %v)\n", o.sessions.server, o.sessions.share)
	}

	sum := sim.NewSummary(o.sim)
	rep := report{Topic: o.topic, Brokers: o.brokers, StartedAt: time.Now().UTC(), Summary: sum}
	var (
		generated int64
		runErr    error
		lastLog   = time.Now()
		msgs      = make([]kafka.Message, 0, perBatch)
		evs       = make([]sim.Event, 0, perBatch)
	)
	for {
		if o.count > 0 && sum.Totals.Sent >= o.count {
			rep.Stopped = "count"
			break
		}
		n := perBatch
		if o.count > 0 {
			n = int(min(int64(n), o.count-sum.Totals.Sent))
		}
		if limiter != nil {
			// WaitN fails at once when the wait would pass runCtx's deadline.
			if err := limiter.WaitN(runCtx, n); err != nil {
				rep.Stopped = stopReason(ctx, o.duration)
				break
			}
		}
		if runCtx.Err() != nil {
			rep.Stopped = stopReason(ctx, o.duration)
			break
		}

		msgs, evs = msgs[:0], evs[:0]
		for range n {
			now := time.Now()
			if !o.start.IsZero() {
				now = o.start.Add(time.Duration(generated) * o.step)
			}
			generated++
			ev := gen.Next(now)
			evs = append(evs, ev)
		}
		var sessionErr error
		if sessions != nil {
			// Not cut short by an interrupt: a call in progress ends with
			// its terminate, and its CDR is written below.
			sessionErr = sessions.Run(context.WithoutCancel(ctx), gen, evs, sum)
		}
		for _, ev := range evs {
			msgs = append(msgs, kafka.Message{Key: ev.Key, Value: ev.Value})
		}
		err := write(ctx, w, msgs, o.brokerWait, stderr)
		var werrs kafka.WriteErrors
		switch {
		case err == nil:
			for _, ev := range evs {
				sum.Record(ev)
			}
		case errors.As(err, &werrs):
			for i, ev := range evs {
				if werrs[i] == nil {
					sum.Record(ev)
				}
			}
			runErr = fmt.Errorf("writing to %s: %d of %d events failed: %w", o.topic, werrs.Count(), len(evs), firstError(werrs))
		default:
			runErr = fmt.Errorf("writing to %s: %w", o.topic, err)
		}
		if sessionErr != nil {
			hint := ""
			if apiErr := (*sim.APIError)(nil); errors.As(sessionErr, &apiErr) && apiErr.Status == http.StatusConflict {
				hint = " (session ids are the calls' ids, c-<seq>: a run before this one used them; pass another --first-seq)"
			}
			runErr = errors.Join(fmt.Errorf("session API at %s: %w%s", o.sessions.server, sessionErr, hint), runErr)
		}
		if runErr != nil {
			rep.Stopped = "error"
			rep.Error = runErr.Error()
			break
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			el := time.Since(rep.StartedAt).Seconds()
			fmt.Fprintf(stderr, "carriersim: sent %d events (%.0f/s)\n", sum.Totals.Sent, float64(sum.Totals.Sent)/el)
		}
	}
	if err := w.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("closing the Kafka writer: %w", err)
	}

	rep.FinishedAt = time.Now().UTC()
	rep.ElapsedSeconds = rep.FinishedAt.Sub(rep.StartedAt).Seconds()
	if rep.ElapsedSeconds > 0 {
		rep.EventsPerSec = float64(sum.Totals.Sent) / rep.ElapsedSeconds
	}
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	out = append(out, '\n')
	if o.summaryPath != "" {
		if err := os.WriteFile(o.summaryPath, out, 0o644); err != nil && runErr == nil {
			runErr = fmt.Errorf("writing the summary: %w", err)
		}
	}
	if _, err := stdout.Write(out); err != nil && runErr == nil {
		runErr = err
	}
	fmt.Fprintf(stderr, "carriersim: sent %d events in %.1fs (%s): %d distinct, %d duplicates, %d late, %d reordered, %d malformed; abroad: %d billable seconds, %d billable bytes, %d SMS\n",
		sum.Totals.Sent, rep.ElapsedSeconds, rep.Stopped, sum.Totals.Distinct, sum.Totals.Duplicates,
		sum.Totals.Late, sum.Totals.Reordered, sum.Totals.Malformed, sum.Totals.BillableSeconds,
		sum.Totals.BillableBytes, sum.Totals.EligibleSMS)
	if st := sum.Sessions; st != nil {
		fmt.Fprintf(stderr, "carriersim: sessions: %d opened, %d final grants, %d calls cut, %d terminated, %d CDRs sent; %d numbers without a seafarer (CDR only); terminates charged %d s (%d covered, %d overage)\n",
			st.Opened, st.Final, st.Cut, st.Terminated, st.CDRs, st.Unknown, st.Charged, st.Covered, st.Overage)
	}
	return runErr
}

// stopReason says why runCtx ended: the caller cancelled ctx (a signal) or
// its deadline came, or --duration was up.
func stopReason(ctx context.Context, duration time.Duration) string {
	if ctx.Err() != nil || duration == 0 {
		return "interrupted"
	}
	return "duration"
}

// write produces one batch. An interrupt does not cut it short: what was
// handed to the broker is either acknowledged and counted, or reported as
// failed. While the broker cannot be reached or does not know the topic
// (nothing of the batch was sent), it retries for up to wait.
func write(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, wait time.Duration, stderr io.Writer) error {
	giveUp := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := w.WriteMessages(wctx, msgs...)
		cancel()
		var werrs kafka.WriteErrors
		if err == nil || errors.As(err, &werrs) || errors.Is(err, context.DeadlineExceeded) ||
			ctx.Err() != nil || time.Now().Add(backoff).After(giveUp) {
			return err
		}
		fmt.Fprintf(stderr, "carriersim: broker not ready (%v), retrying\n", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func rateString(r float64) string {
	if r == 0 {
		return "max"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

func firstError(errs kafka.WriteErrors) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
