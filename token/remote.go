package token

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// Defaults of a JWKS read from a URL (CONTRACT §7.6): the identity provider
// may rotate its keys without a restart of Wuyou.
const (
	// DefaultJWKSRefresh is how often the JWKS is fetched again, so a key
	// the provider removed stops verifying within this time at the latest.
	DefaultJWKSRefresh = 10 * time.Minute
	// DefaultJWKSUnknownKIDEvery is how often at most a token naming a kid
	// the set lacks makes Wuyou fetch the set again before refusing it: a
	// new key is accepted at once, and tokens with made-up kids cost at most
	// one fetch this often.
	DefaultJWKSUnknownKIDEvery = 30 * time.Second
	// DefaultJWKSTimeout bounds one fetch.
	DefaultJWKSTimeout = 5 * time.Second
	// MaxJWKSBytes bounds the JWKS read from a URL: a provider's set is a
	// few kilobytes, and a longer answer fails the fetch instead of filling
	// memory.
	MaxJWKSBytes = 1 << 20
)

// RemoteOptions tunes a RemoteJWKS; zero values mean the defaults above.
type RemoteOptions struct {
	Refresh         time.Duration
	UnknownKIDEvery time.Duration
	Timeout         time.Duration
	Client          *http.Client // nil: http.DefaultClient
	Log             *slog.Logger // failed refreshes are logged here at warn; nil: slog.Default()
}

// RemoteJWKS is a JWKS fetched from an http:// or https:// URL and kept
// fresh by keyfunc (on jwkset's storage): fetched every Refresh, and at most
// every UnknownKIDEvery when a token names a kid it does not know. A failed
// refresh keeps the keys of the last good one. Each key is read as ParseJWKS
// reads a key of a file: only its public members, with the one algorithm its
// type verifies, and keys Wuyou does not accept are skipped.
type RemoteJWKS struct {
	url     string
	keys    keyfunc.Keyfunc
	timeout time.Duration
	stop    context.CancelFunc
}

// IsJWKSURL reports whether source names a JWKS by http:// or https:// URL
// rather than a file or inline JSON.
func IsJWKSURL(source string) bool {
	u, err := url.Parse(source)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// OpenRemoteJWKS fetches the JWKS at rawURL once and starts refreshing it
// until ctx ends or Close. The first fetch must succeed and hold at least one
// usable key: a service that starts without keys would refuse every token
// while looking healthy, so it had better not start.
func OpenRemoteJWKS(ctx context.Context, rawURL string, opts RemoteOptions) (*RemoteJWKS, error) {
	if !IsJWKSURL(rawURL) {
		return nil, fmt.Errorf("JWKS URL %q: want http:// or https:// with a host", rawURL)
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.UnknownKIDEvery <= 0 {
		opts.UnknownKIDEvery = DefaultJWKSUnknownKIDEvery
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultJWKSTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	client := &http.Client{Transport: http.DefaultTransport}
	if opts.Client != nil {
		copied := *opts.Client
		client = &copied
		if client.Transport == nil {
			client.Transport = http.DefaultTransport
		}
	}
	client.Transport = boundedBody{client.Transport}
	ctx, stop := context.WithCancel(ctx)
	failFirst := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{rawURL}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               opts.Timeout,
		NoErrorReturnFirstHTTPReq: &failFirst,
		RefreshInterval:           opts.Refresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(opts.UnknownKIDEvery), 1),
		// Bounds both the wait for the limiter and the fetch an unknown
		// kid makes (jwkset uses one context for the two): a token whose
		// kid is unknown waits at most Timeout, and is refused at once
		// when the next fetch is further away than that.
		RateLimitWaitMax: opts.Timeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				opts.Log.Warn("JWKS not refreshed; the keys of the last fetch stay in use", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("fetch JWKS from %s: %w", rawURL, err)
	}
	r := &RemoteJWKS{url: rawURL, keys: kf, timeout: opts.Timeout, stop: stop}
	all, err := kf.Storage().KeyReadAll(ctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("JWKS from %s: %w", rawURL, err)
	}
	usable := 0
	for _, jwk := range all {
		if _, ok := usableKey(jwk.Marshal()); ok {
			usable++
		}
	}
	if usable == 0 {
		stop()
		return nil, fmt.Errorf("JWKS from %s has no usable signing key (EdDSA/Ed25519, ES256/P-256 or RS256 with a kid)", rawURL)
	}
	return r, nil
}

// Key returns the usable key named kid. A kid the set lacks makes it fetch
// the set again first, unless a fetch for an unknown kid was made within
// UnknownKIDEvery; so it may take up to Timeout.
func (r *RemoteJWKS) Key(ctx context.Context, kid string) (PublicKey, bool) {
	if kid == "" {
		return PublicKey{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// Not found (after the refetch, or too soon for one) and a fetch that
	// failed are alike to the caller: the token is refused. A failed fetch
	// is logged by the refresh error handler.
	jwk, err := r.keys.Storage().KeyRead(ctx, kid)
	if err != nil {
		return PublicKey{}, false
	}
	k, ok := usableKey(jwk.Marshal())
	if !ok || k.KID != kid {
		return PublicKey{}, false
	}
	return k, true
}

// URL is where the set is fetched from.
func (r *RemoteJWKS) URL() string { return r.url }

// Close stops the refreshes. Keys already fetched stay readable.
func (r *RemoteJWKS) Close() { r.stop() }

// boundedBody cuts every answer after MaxJWKSBytes, so a longer JWKS does
// not decode and the fetch fails.
type boundedBody struct{ next http.RoundTripper }

func (b boundedBody) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := b.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(res.Body, MaxJWKSBytes), res.Body}
	return res, nil
}
