package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal. Only a terminal gets a
// progress bar: redrawing a line with carriage returns fills a log file
// or a pipe with noise. A variable, so tests can pretend.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar shows how far a long upload or issuance has got, as a bar
// drawn by schollz/progressbar on a terminal and not at all elsewhere. It
// is safe for concurrent use: the HTTP transport reads an upload body on
// its own goroutine.
type progressBar struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar // nil when not drawing
	total int64
	done  bool
}

// newProgressBar starts a bar for total units on w; bytes shows the counts
// as sizes (1.5 KiB) rather than plain numbers.
func newProgressBar(w io.Writer, label string, total int64, bytes bool) *progressBar {
	b := &progressBar{total: total}
	if !isTerminal(w) {
		return b
	}
	b.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionThrottle(100*time.Millisecond), // a slow link gets few redraws
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return b
}

// Add advances the bar by n units.
func (b *progressBar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil && !b.done {
		_ = b.bar.Add64(n)
	}
}

// Set moves the bar to current units.
func (b *progressBar) Set(current int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil && !b.done {
		_ = b.bar.Set64(current)
	}
}

// Finish draws the bar's last state and ends its line; later calls change
// nothing.
func (b *progressBar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if b.bar != nil && !b.bar.IsFinished() {
		_ = b.bar.Finish()
	}
}

// progressReader advances a bar by the bytes read through it and calls
// atEOF (when set) once, when the last byte has been read.
type progressReader struct {
	r     io.Reader
	bar   *progressBar
	atEOF func()
	read  int64
	once  sync.Once
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	p.bar.Add(int64(n))
	if p.atEOF != nil && (errors.Is(err, io.EOF) || p.read >= p.bar.total) {
		p.once.Do(p.atEOF)
	}
	return n, err
}
