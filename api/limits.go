package api

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
)

// What one request may make the server hold.
//
// Headers. fasthttp reads the request line and every header into one read
// buffer of readBufferSize, and refuses a request head that does not fit
// before any handler runs. 16 KiB holds the longest token Verify accepts
// (MaxTokenBytes) beside the usual other headers. The buffer is not raised
// to let a megabyte of Authorization reach Authenticate: fasthttp keeps one
// per connection while it is served, so a public API with many slow
// maritime clients would pay for the worst case on every one of them. Idle
// keep-alive connections give theirs back (ReduceMemoryUsage). Instead,
// fasthttp's "431 Request Header Fields Too Large" is answered for what it
// means here: no credentials Wuyou can accept, 401 problem+json with the
// Bearer challenge. Every route that touches data needs a token, a head over
// 16 KiB cannot carry one that Verify would accept, and no client of the
// open routes (health, metrics, documents) sends such a head.
//
// Bodies. Request bodies are streamed (bulk enrolment reads a crew list row
// by row), and in that mode fasthttp does not enforce Config.BodyLimit
// itself: a body over it would be read whole by the first c.Body(). So
// limitBody refuses a declared Content-Length over the limit before any byte
// of it is read, and a chunked body is read, after Authenticate, through a
// limit (bufferChunkedBody) — except on routes that stream their body under
// a limit of their own (streamsItsBody). Compressed bodies are refused:
// fiber would inflate them without any bound. fasthttp's multipart pre-parse,
// which would spool files to disk before authentication, is off.
//
// Refusing early (401 before the body, 413, an oversized head) means
// answering while the client is still sending. fasthttp drops up to 256 KiB
// of an unread body itself and otherwise closes the connection, and closing
// with unread bytes makes the kernel send a reset: the client may see
// "connection reset" instead of the answer. A connection whose request
// carried a larger body, or an oversized head, therefore lingers when it
// closes (as nginx's lingering_close and Go's net/http do): the answer has
// been sent, the write side is shut, and what the client still sends is read
// and dropped, in the background, for a bounded time and size.

const (
	// readBufferSize bounds the request line and headers together.
	readBufferSize = 16 << 10
	// unreadBodyDropped is how much of an unread body fasthttp reads and
	// drops to keep a connection (its maxUnreadStreamBodySize); past it, it
	// closes the connection.
	unreadBodyDropped = 256 << 10
	// lingerTime and lingerBytes bound how long and how much a closing
	// connection's remaining request bytes are read and dropped.
	lingerTime  = 2 * time.Second
	lingerBytes = 20 << 20
)

// limitBody refuses what no route may receive: a declared body over limit
// bytes (413) and a compressed body (415). It reads nothing. A request with
// a body that fasthttp would not drop by itself marks its connection to
// linger should it close.
func limitBody(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := &c.Request().Header
		n := h.ContentLength() // -1 chunked, -2 none declared (read as empty)
		if lc, ok := c.Context().Conn().(*lingeringConn); ok {
			lc.linger.Store(n == -1 || n > unreadBodyDropped)
		}
		if n == 0 || n == -2 {
			return c.Next()
		}
		if enc := strings.TrimSpace(string(h.Peek(fiber.HeaderContentEncoding))); enc != "" && !strings.EqualFold(enc, "identity") {
			return fiber.NewError(fiber.StatusUnsupportedMediaType, "request bodies must not be compressed (Content-Encoding "+enc+")")
		}
		if n > limit {
			return bodyTooLarge(limit)
		}
		return c.Next()
	}
}

// bufferChunkedBody reads a chunked request body into memory through the
// limit, so c.Body() never reads past it. It runs after Authenticate, so
// only a principal can make the server buffer a body. Routes that read
// their body as a stream under a limit of their own are left alone
// (streamsItsBody); every other route is safe by default, a new one too.
func bufferChunkedBody(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		stream := c.Context().RequestBodyStream()
		if c.Request().Header.ContentLength() != -1 || stream == nil || streamsItsBody(c.Path()) {
			return c.Next()
		}
		b, err := io.ReadAll(io.LimitReader(stream, int64(limit)+1))
		if err != nil {
			return wuyou.Errorf(wuyou.EINVALID, "request body could not be read: %v", err)
		}
		if len(b) > limit {
			return bodyTooLarge(limit)
		}
		c.Request().SetBodyRaw(b)
		return c.Next()
	}
}

// streamsItsBody names the routes that read their body as a stream and
// bound it themselves: bulk enrolment (crew.MaxBulkRows, crew.MaxBulkBytes).
func streamsItsBody(path string) bool {
	return strings.HasSuffix(path, "/seafarers:bulk")
}

func bodyTooLarge(limit int) error {
	return wuyou.Errorf(wuyou.ETOOLARGE, "request body is larger than %d bytes", limit)
}

// refuseOversized wraps the error handler: fasthttp's 431 for a request
// head over readBufferSize becomes a 401 (see the comment at the top), and
// after a 413 or 431 the connection lingers when it closes.
func refuseOversized(next fiber.ErrorHandler) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var fe *fiber.Error
		switch {
		case errors.As(err, &fe) && fe.Code == fiber.StatusRequestHeaderFieldsTooLarge:
			lingerBeforeClose(c)
			c.Set(fiber.HeaderWWWAuthenticate, bearerChallenge)
			err = unauthorized("request headers are too large; a bearer token has at most 8 KiB")
		case errors.As(err, &fe) && fe.Code == fiber.StatusRequestEntityTooLarge,
			wuyou.ErrorCode(err) == wuyou.ETOOLARGE:
			lingerBeforeClose(c)
		}
		return next(c, err)
	}
}

// lingerBeforeClose marks the request's connection to linger when the server
// closes it. Connections not accepted by Server.Listen (app.Test) are left as
// they are.
func lingerBeforeClose(c *fiber.Ctx) {
	if lc, ok := c.Context().Conn().(*lingeringConn); ok {
		lc.linger.Store(true)
	}
}

// lingeringListener hands out connections that can linger on close.
type lingeringListener struct{ net.Listener }

func (l lingeringListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingeringConn{Conn: c}, nil
}

// lingeringConn, when marked, shuts its write side on Close (the answer has
// been flushed by then) and drops what the peer still sends, up to
// lingerBytes or lingerTime, so the close does not reset the connection
// under the peer's feet. The lingering runs in the background: neither the
// server's worker nor a shutdown waits for it.
type lingeringConn struct {
	net.Conn
	linger atomic.Bool
}

func (c *lingeringConn) Close() error {
	tc, ok := c.Conn.(*net.TCPConn)
	if !c.linger.CompareAndSwap(true, false) || !ok || tc.CloseWrite() != nil {
		return c.Conn.Close()
	}
	go func() {
		_ = tc.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, tc, lingerBytes)
		_ = tc.Close()
	}()
	return nil
}
