package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaultsFollowTheContract(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{}))
	require.NoError(t, err)
	require.Equal(t, ":8080", c.HTTPAddr)
	require.Equal(t, "wuyou", c.RedisPrefix)
	require.Equal(t, "wuyou-metering", c.KafkaGroup)
	require.Equal(t, "", c.TopicPrefix)
	require.Equal(t, "wuyou", c.JWTAudience)
	require.Equal(t, "CN", c.HomeCountry)
	require.Equal(t, 720*time.Hour, c.DedupeWindow)
	require.Equal(t, 0, c.RedisDB)
}

func TestConfigMissingRequiredVariablesAreNamed(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_KAFKA_BROKERS": "k:9092"}))
	require.NoError(t, err)
	err = c.Validate()
	require.Error(t, err)
	for _, name := range []string{"WUYOU_REDIS_ADDRS", "WUYOU_JWT_JWKS", "WUYOU_JWT_ISSUER"} {
		require.Contains(t, err.Error(), name)
	}
	require.NotContains(t, err.Error(), "WUYOU_KAFKA_BROKERS", "a variable that is set is not reported")
}

func TestConfigRejectsUnparseableValues(t *testing.T) {
	_, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_DEDUPE_WINDOW": "30 days", "WUYOU_REDIS_DB": "one"}))
	require.ErrorContains(t, err, "WUYOU_DEDUPE_WINDOW")
	require.ErrorContains(t, err, "WUYOU_REDIS_DB")
}

func TestConfigSeveralRedisAddressesMeanClusterAndForbidDB(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{
		"WUYOU_REDIS_ADDRS": "a:7000, b:7001,c:7002", "WUYOU_REDIS_DB": "2", "WUYOU_KAFKA_BROKERS": "k:9092",
		"WUYOU_JWT_JWKS": "/j", "WUYOU_JWT_ISSUER": "i",
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"a:7000", "b:7001", "c:7002"}, c.RedisAddrs)
	require.ErrorContains(t, c.Validate(), "WUYOU_REDIS_DB")
}

func TestConfigLogMasksThePassword(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_REDIS_PASSWORD": "s3cr3t-value"}))
	require.NoError(t, err)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
	require.NotContains(t, buf.String(), "s3cr3t-value")
	require.Contains(t, buf.String(), `"redis_password":"***"`)
}

func TestRunStopsWithAMessageNamingTheMissingVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), nil, envOf(map[string]string{}), &out, &errOut)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "WUYOU_REDIS_ADDRS is required"), err.Error())
}

func TestConfigWriteRateLimitDefaultsToTheAPIsDefaultAndMustBePositive(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{}))
	require.NoError(t, err)
	require.Equal(t, 6000, c.WriteRateLimit)

	_, err = ConfigFromEnv(envOf(map[string]string{"WUYOU_WRITE_RATE_LIMIT": "lots"}))
	require.ErrorContains(t, err, "WUYOU_WRITE_RATE_LIMIT")

	c, err = ConfigFromEnv(envOf(map[string]string{"WUYOU_WRITE_RATE_LIMIT": "0"}))
	require.NoError(t, err)
	require.ErrorContains(t, c.Validate(), "WUYOU_WRITE_RATE_LIMIT")
}

func TestConfigPostgresURLIsOptionalUntilSomethingReadsIt(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{
		"WUYOU_REDIS_ADDRS": "r:6379", "WUYOU_KAFKA_BROKERS": "k:9092", "WUYOU_JWT_JWKS": "/j", "WUYOU_JWT_ISSUER": "i",
	}))
	require.NoError(t, err)
	require.Equal(t, "", c.PostgresURL)
	require.NoError(t, c.Validate(), "an empty WUYOU_POSTGRES_URL means not configured yet")
	require.ErrorContains(t, c.validatePostgres(), "WUYOU_POSTGRES_URL is required")

	c, err = ConfigFromEnv(envOf(map[string]string{"WUYOU_POSTGRES_URL": " postgres://wuyou@db:5432/wuyou "}))
	require.NoError(t, err)
	require.Equal(t, "postgres://wuyou@db:5432/wuyou", c.PostgresURL)
	require.NoError(t, c.validatePostgres())
}

func TestConfigRejectsAPostgresURLThatDoesNotParseWithoutShowingItsPassword(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_POSTGRES_URL": "postgres://wuyou:hunter2-pw@db:notaport/wuyou"}))
	require.NoError(t, err)
	err = c.Validate()
	require.ErrorContains(t, err, "WUYOU_POSTGRES_URL")
	require.NotContains(t, err.Error(), "hunter2-pw")
}

func TestConfigLogMasksThePostgresPassword(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"in the user info", "postgres://wuyou:s3cr3t-pg@db.internal:5432/wuyou?sslmode=require", "postgres://wuyou:***@db.internal:5432/wuyou?sslmode=require"},
		{"as a query parameter", "postgresql://db:5432/wuyou?user=wuyou&password=s3cr3t-pg", "postgresql://db:5432/wuyou?password=***&user=wuyou"},
		{"as a key=value pair", "host=db user=wuyou password=s3cr3t-pg dbname=wuyou", "host=db user=wuyou password=*** dbname=wuyou"},
		{"quoted in a key=value pair", "host=db password='s3cr3t pg' dbname=wuyou", "host=db password=*** dbname=wuyou"},
		{"in a URL that does not parse", "postgres://wuyou:s3cr3t-pg@db:port/wuyou", "postgres://***"},
		{"absent", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "postgres://root@127.0.0.1:5432/test?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_POSTGRES_URL": tc.url}))
			require.NoError(t, err)
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
			require.NotContains(t, buf.String(), "s3cr3t")
			require.Contains(t, buf.String(), `"postgres_url":"`+tc.want+`"`)
		})
	}
}

func TestConfigLogLevelIsInfoByDefaultAndAcceptsTheFourLevels(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  slog.Level
	}{
		{"", slog.LevelInfo}, {"debug", slog.LevelDebug}, {"info", slog.LevelInfo},
		{"warn", slog.LevelWarn}, {"error", slog.LevelError}, {" DEBUG ", slog.LevelDebug},
	} {
		t.Run("value "+strconv.Quote(tc.value), func(t *testing.T) {
			c, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_LOG_LEVEL": tc.value}))
			require.NoError(t, err)
			require.Equal(t, tc.want, c.LogLevel)
		})
	}
}

func TestConfigLogLevelOtherThanTheFourIsAnErrorNamingTheVariable(t *testing.T) {
	for _, value := range []string{"verbose", "warning", "trace", "0"} {
		_, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_LOG_LEVEL": value}))
		require.ErrorContains(t, err, "WUYOU_LOG_LEVEL", value)
	}
	err := run(context.Background(), nil, envOf(map[string]string{"WUYOU_LOG_LEVEL": "loud"}), &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "WUYOU_LOG_LEVEL")
}

func TestLogAtInfoDropsDebugLinesAndAtDebugKeepsThem(t *testing.T) {
	var info, debug bytes.Buffer
	newLogger(&info, slog.LevelInfo).Debug("a debug line")
	newLogger(&info, slog.LevelInfo).Info("an info line")
	newLogger(&debug, slog.LevelDebug).Debug("a debug line")
	require.NotContains(t, info.String(), "a debug line")
	require.Contains(t, info.String(), "an info line")
	require.Contains(t, debug.String(), "a debug line")
}

func TestConfigStartLineHasTheLogLevelAndReadableDurations(t *testing.T) {
	c, err := ConfigFromEnv(envOf(map[string]string{"WUYOU_LOG_LEVEL": "warn"}))
	require.NoError(t, err)
	var buf bytes.Buffer
	newLogger(&buf, slog.LevelInfo).Info("starting wuyoud", "config", c)
	var line struct {
		Config map[string]any `json:"config"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "warn", line.Config["log_level"])
	require.Equal(t, "720h0m0s", line.Config["dedupe_window"], "a duration is logged as a Go duration, not nanoseconds")
	require.Equal(t, "24h0m0s", line.Config["clock_skew"])
	require.Equal(t, "30s", line.Config["shutdown_timeout"])
}

// composeFile is the part of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `json:"image"`
		Environment map[string]string `json:"environment"`
	} `json:"services"`
}

// The compose file is for users and cannot run here (no Docker engine), so it
// is kept correct by reading: its wuyoud service writes out every variable
// wuyoud reads, each value parses as wuyoud would parse it (a ${VAR:-default}
// read as its default), and every image from a registry is pinned to a
// release, not a moving tag like latest or a bare major version.
func TestDockerComposeListsEveryVariableWithAValueWuyoudAccepts(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var compose composeFile
	require.NoError(t, yaml.Unmarshal(raw, &compose))

	svc, ok := compose.Services["wuyoud"]
	require.True(t, ok, "docker-compose.yml has no wuyoud service")
	for _, name := range configVars {
		require.Contains(t, svc.Environment, name, "docker-compose.yml's wuyoud service does not set %s", name)
	}
	for name := range svc.Environment {
		require.Contains(t, configVars, name, "docker-compose.yml sets %s, which wuyoud does not read", name)
	}

	substitution := regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)
	env := map[string]string{}
	for name, value := range svc.Environment {
		env[name] = substitution.ReplaceAllString(value, "$1")
	}
	cfg, err := ConfigFromEnv(func(name string) string { return env[name] })
	require.NoError(t, err, "the compose file's values do not parse")
	require.NoError(t, cfg.Validate(), "the compose file's configuration is refused")

	release := regexp.MustCompile(`^[a-z0-9./_-]+:[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	for name, s := range compose.Services {
		if s.Image == "" || strings.HasSuffix(s.Image, ":local") {
			continue // built here
		}
		require.Regexp(t, release, s.Image, "service %s: image is not pinned to a release", name)
	}
}
