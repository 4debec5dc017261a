package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/signin"
)

// Config is everything wuyoud reads from its environment (CONTRACT §1). It
// is parsed once, here; nothing else reads the environment.
type Config struct {
	HTTPAddr      string
	RedisAddrs    []string
	RedisPassword string
	RedisDB       int
	RedisPrefix   string
	KafkaBrokers  []string
	KafkaGroup    string
	TopicPrefix   string
	JWKSPath      string // a JWKS file, an http(s) URL fetched and refreshed (§7.6), or the JSON itself
	JWTIssuer     string
	JWTAudience   string
	HomeCountry   string
	TariffPath    string
	DedupeWindow  time.Duration
	// ClockSkew is how far after now a call's time may lie before the
	// event is refused as invalid (WUYOU_CLOCK_SKEW).
	ClockSkew time.Duration
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// WriteRateLimit is how many write requests one token may make a
	// minute, counted in Redis across every replica.
	WriteRateLimit int
	// PostgresURL is the system of record (WUYOU_POSTGRES_URL, CONTRACT
	// §7.1). Empty means not configured yet: only `wuyoud migrate` uses it
	// so far, and requires it.
	PostgresURL string
	// LogLevel is the least severe level logged (WUYOU_LOG_LEVEL, §7.6).
	LogLevel slog.Level
	// SeafarerTokenTTL is how long a token from the one-time-code sign-in
	// lives (WUYOU_SEAFARER_TOKEN_TTL, §7.4).
	SeafarerTokenTTL time.Duration
	// KeyRotation is how long one of Wuyou's own signing keys signs
	// (WUYOU_SIGNING_KEY_ROTATION).
	KeyRotation time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client address sign-in limits count (WUYOU_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
}

// configVars lists every variable, for messages and docs.
var configVars = []string{
	"WUYOU_HTTP_ADDR", "WUYOU_REDIS_ADDRS", "WUYOU_REDIS_PASSWORD", "WUYOU_REDIS_DB", "WUYOU_REDIS_PREFIX",
	"WUYOU_KAFKA_BROKERS", "WUYOU_KAFKA_GROUP", "WUYOU_TOPIC_PREFIX", "WUYOU_JWT_JWKS", "WUYOU_JWT_ISSUER",
	"WUYOU_JWT_AUDIENCE", "WUYOU_HOME_COUNTRY", "WUYOU_TARIFF", "WUYOU_DEDUPE_WINDOW",
	"WUYOU_SHUTDOWN_TIMEOUT", "WUYOU_WRITE_RATE_LIMIT", "WUYOU_POSTGRES_URL", "WUYOU_CLOCK_SKEW", "WUYOU_LOG_LEVEL",
	"WUYOU_SEAFARER_TOKEN_TTL", "WUYOU_SIGNING_KEY_ROTATION", "WUYOU_TRUSTED_PROXIES",
}

// ConfigFromEnv reads the configuration with its defaults. It fails on a
// value that cannot be parsed; Validate checks what is required.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		HTTPAddr:      get("WUYOU_HTTP_ADDR", ":8080"),
		RedisAddrs:    splitList(get("WUYOU_REDIS_ADDRS", "")),
		RedisPassword: getenv("WUYOU_REDIS_PASSWORD"),
		RedisPrefix:   get("WUYOU_REDIS_PREFIX", "wuyou"),
		KafkaBrokers:  splitList(get("WUYOU_KAFKA_BROKERS", "")),
		KafkaGroup:    get("WUYOU_KAFKA_GROUP", "wuyou-metering"),
		TopicPrefix:   getenv("WUYOU_TOPIC_PREFIX"),
		JWKSPath:      get("WUYOU_JWT_JWKS", ""),
		JWTIssuer:     get("WUYOU_JWT_ISSUER", ""),
		JWTAudience:   get("WUYOU_JWT_AUDIENCE", "wuyou"),
		HomeCountry:   get("WUYOU_HOME_COUNTRY", "CN"),
		TariffPath:    get("WUYOU_TARIFF", ""),
		PostgresURL:   get("WUYOU_POSTGRES_URL", ""),
	}
	var errs []error
	var err error
	if c.RedisDB, err = strconv.Atoi(get("WUYOU_REDIS_DB", "0")); err != nil {
		errs = append(errs, fmt.Errorf("WUYOU_REDIS_DB: not a number: %q", getenv("WUYOU_REDIS_DB")))
	}
	if c.WriteRateLimit, err = strconv.Atoi(get("WUYOU_WRITE_RATE_LIMIT", strconv.Itoa(api.DefaultWriteRateLimit))); err != nil {
		errs = append(errs, fmt.Errorf("WUYOU_WRITE_RATE_LIMIT: not a number: %q", getenv("WUYOU_WRITE_RATE_LIMIT")))
	}
	if c.LogLevel, err = parseLogLevel(getenv("WUYOU_LOG_LEVEL")); err != nil {
		errs = append(errs, err)
	}
	duration := func(name, def string) time.Duration {
		d, err := time.ParseDuration(get(name, def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a Go duration (like 720h): %q", name, getenv(name)))
		}
		return d
	}
	c.DedupeWindow = duration("WUYOU_DEDUPE_WINDOW", "720h")
	c.ClockSkew = duration("WUYOU_CLOCK_SKEW", "24h")
	c.ShutdownTimeout = duration("WUYOU_SHUTDOWN_TIMEOUT", "30s")
	c.SeafarerTokenTTL = duration("WUYOU_SEAFARER_TOKEN_TTL", "168h")
	c.KeyRotation = duration("WUYOU_SIGNING_KEY_ROTATION", "720h")
	if c.TrustedProxies, err = api.ParseTrustedProxies(getenv("WUYOU_TRUSTED_PROXIES")); err != nil {
		errs = append(errs, fmt.Errorf("WUYOU_TRUSTED_PROXIES: %w", err))
	}
	return c, errors.Join(errs...)
}

// parseLogLevel reads WUYOU_LOG_LEVEL: debug, info, warn or error, in any
// case; empty is info. Anything else is an error naming the variable.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("WUYOU_LOG_LEVEL: must be debug, info, warn or error, got %q", s)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate names every missing or invalid setting.
func (c Config) Validate() error {
	var errs []error
	missing := func(name string, empty bool) {
		if empty {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	missing("WUYOU_REDIS_ADDRS", len(c.RedisAddrs) == 0)
	missing("WUYOU_KAFKA_BROKERS", len(c.KafkaBrokers) == 0)
	missing("WUYOU_JWT_JWKS", c.JWKSPath == "")
	missing("WUYOU_JWT_ISSUER", c.JWTIssuer == "")
	missing("WUYOU_JWT_AUDIENCE", c.JWTAudience == "")
	if len(c.HomeCountry) != 2 || strings.ToUpper(c.HomeCountry) != c.HomeCountry {
		errs = append(errs, fmt.Errorf("WUYOU_HOME_COUNTRY must be an ISO 3166 alpha-2 code like CN, got %q", c.HomeCountry))
	}
	if c.DedupeWindow <= 0 {
		errs = append(errs, errors.New("WUYOU_DEDUPE_WINDOW must be positive"))
	}
	if c.ClockSkew <= 0 {
		errs = append(errs, errors.New("WUYOU_CLOCK_SKEW must be positive"))
	}
	if c.SeafarerTokenTTL < time.Minute {
		errs = append(errs, errors.New("WUYOU_SEAFARER_TOKEN_TTL must be at least 1m"))
	}
	if c.KeyRotation < time.Hour {
		errs = append(errs, errors.New("WUYOU_SIGNING_KEY_ROTATION must be at least 1h"))
	}
	if c.JWTIssuer == signin.Issuer {
		errs = append(errs, fmt.Errorf("WUYOU_JWT_ISSUER must not be %s, the issuer of Wuyou's own seafarer tokens", signin.Issuer))
	}
	if c.RedisDB < 0 || (c.RedisDB != 0 && len(c.RedisAddrs) > 1) {
		errs = append(errs, errors.New("WUYOU_REDIS_DB must be 0 with Redis Cluster (several WUYOU_REDIS_ADDRS)"))
	}
	if c.WriteRateLimit <= 0 {
		errs = append(errs, errors.New("WUYOU_WRITE_RATE_LIMIT must be a positive number of write requests per token a minute"))
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} ") {
		errs = append(errs, errors.New("WUYOU_REDIS_PREFIX must be non-empty without braces or spaces"))
	}
	if c.PostgresURL != "" {
		errs = append(errs, c.validatePostgres())
	}
	return errors.Join(errs...)
}

// validatePostgres checks that WUYOU_POSTGRES_URL is set and parses. The
// message shows the value masked and not the parser's error, which may
// quote the password.
func (c Config) validatePostgres() error {
	if c.PostgresURL == "" {
		return errors.New("WUYOU_POSTGRES_URL is required")
	}
	if _, err := pgconn.ParseConfig(c.PostgresURL); err != nil {
		return fmt.Errorf("WUYOU_POSTGRES_URL is not a PostgreSQL connection URL like postgres://user:password@host:5432/wuyou: %s",
			maskPostgresURL(c.PostgresURL))
	}
	return nil
}

// kvPassword is the password of a key=value connection string, quoted or not.
var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// maskPostgresURL hides the password of a PostgreSQL connection string,
// whether in the URL's user info, its password= query parameter or a
// key=value pair. A URL that does not parse is hidden whole after its scheme.
func maskPostgresURL(s string) string {
	if s == "" {
		return ""
	}
	if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return kvPassword.ReplaceAllString(s, "${1}***")
	}
	u, err := url.Parse(s)
	if err != nil {
		return s[:strings.Index(s, "://")+3] + "***"
	}
	// A placeholder that needs no escaping, swapped for *** at the end (url
	// would write *** in user info as %2A%2A%2A).
	const placeholder = "wuyoumaskedpassword"
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), placeholder)
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", placeholder)
		u.RawQuery = q.Encode()
	}
	return strings.ReplaceAll(u.String(), placeholder, "***")
}

// LogValue is the configuration as logged at start, secrets masked.
// Durations are written as Go durations ("720h0m0s"): slog.Duration would
// write nanoseconds in JSON.
func (c Config) LogValue() slog.Value {
	password := ""
	if c.RedisPassword != "" {
		password = "***"
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.Any("redis_addrs", c.RedisAddrs),
		slog.String("redis_password", password),
		slog.Int("redis_db", c.RedisDB),
		slog.String("redis_prefix", c.RedisPrefix),
		slog.Any("kafka_brokers", c.KafkaBrokers),
		slog.String("kafka_group", c.KafkaGroup),
		slog.String("topic_prefix", c.TopicPrefix),
		slog.String("jwt_jwks", c.jwksForLog()),
		slog.String("jwt_issuer", c.JWTIssuer),
		slog.String("jwt_audience", c.JWTAudience),
		slog.String("home_country", c.HomeCountry),
		slog.String("tariff", c.TariffPath),
		slog.String("dedupe_window", c.DedupeWindow.String()),
		slog.String("clock_skew", c.ClockSkew.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.Int("write_rate_limit", c.WriteRateLimit),
		slog.String("postgres_url", maskPostgresURL(c.PostgresURL)),
		slog.String("log_level", strings.ToLower(c.LogLevel.String())),
		slog.String("seafarer_token_ttl", c.SeafarerTokenTTL.String()),
		slog.String("signing_key_rotation", c.KeyRotation.String()),
		slog.Any("trusted_proxies", c.TrustedProxies),
	)
}

// jwksForLog is WUYOU_JWT_JWKS as logged: a path or URL as given, inline
// JSON as a mention only (a line of public keys helps nobody).
func (c Config) jwksForLog() string {
	if strings.HasPrefix(c.JWKSPath, "{") {
		return "(inline JWKS)"
	}
	return c.JWKSPath
}
