package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/token"
)

const testIssuer = "https://auth.wuyou.test"

// MustRun runs one wuyouctl command line and returns its stdout.
func MustRun(tb testing.TB, args ...string) string {
	tb.Helper()
	stdout, err := runCaptured(args...)
	require.NoError(tb, err, "wuyouctl %s", strings.Join(args, " "))
	return stdout
}

func runCaptured(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

// MustKeygen makes a key and its JWKS in a fresh directory.
func MustKeygen(tb testing.TB, alg, kid string) (keyPath, jwksPath string) {
	tb.Helper()
	dir := tb.TempDir()
	keyPath, jwksPath = filepath.Join(dir, "signing.pem"), filepath.Join(dir, "jwks.json")
	args := []string{"token", "keygen", "--alg", alg, "--out-key", keyPath, "--out-jwks", jwksPath}
	if kid != "" {
		args = append(args, "--kid", kid)
	}
	MustRun(tb, args...)
	return keyPath, jwksPath
}

func TestTokenKeygenThenMint_MakesTokensTheServerVerifies(t *testing.T) {
	tests := []struct {
		name string
		alg  string
		kid  string
		mint []string
		want api.Principal
	}{
		{"EdDSA union token", token.AlgEdDSA, "k1",
			[]string{"--sub", "officer-1", "--role", "union"},
			api.Principal{Role: token.RoleUnion, Subject: "officer-1"}},
		{"ES256 company token carries company_id", token.AlgES256, "k2",
			[]string{"--sub", "staff-7", "--role", "company", "--company-id", "co-42", "--ttl", "15m"},
			api.Principal{Role: token.RoleCompany, Subject: "staff-7", CompanyID: "co-42"}},
		{"RS256 seafarer token", token.AlgRS256, "k3",
			[]string{"--sub", "sf-1", "--role", "seafarer"},
			api.Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"without --kid both sides use the key's thumbprint", token.AlgEdDSA, "",
			[]string{"--sub", "cmcc", "--role", "carrier"},
			api.Principal{Role: token.RoleCarrier, Subject: "cmcc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyPath, jwksPath := MustKeygen(t, tt.alg, tt.kid)
			args := []string{"token", "mint", "--key", keyPath, "--iss", testIssuer}
			if tt.kid != "" {
				args = append(args, "--kid", tt.kid)
			}
			out := MustRun(t, append(args, tt.mint...)...)
			token := strings.TrimSuffix(out, "\n")
			require.NotContains(t, token, "\n", "mint prints the token alone")

			v, err := api.NewVerifier(jwksPath, testIssuer, "wuyou", time.Now)
			require.NoError(t, err)
			p, err := v.Verify(token)
			require.NoError(t, err)
			require.Equal(t, tt.want, p)
		})
	}
}

func TestTokenMint_TTLBoundsTheToken(t *testing.T) {
	keyPath, jwksPath := MustKeygen(t, token.AlgEdDSA, "k1")
	token := strings.TrimSpace(MustRun(t, "token", "mint", "--key", keyPath, "--kid", "k1",
		"--iss", testIssuer, "--sub", "sf-1", "--role", "seafarer", "--ttl", "10m"))

	inAnHour := func() time.Time { return time.Now().Add(time.Hour) }
	v, err := api.NewVerifier(jwksPath, testIssuer, "wuyou", inAnHour)
	require.NoError(t, err)
	_, err = v.Verify(token)
	require.Error(t, err, "a 10m token is expired an hour later")
}

func TestTokenMint_RefusesWhatTheServerWouldRefuse(t *testing.T) {
	keyPath, _ := MustKeygen(t, token.AlgEdDSA, "k1")
	base := []string{"token", "mint", "--key", keyPath, "--kid", "k1", "--iss", testIssuer}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"missing --role", append(base, "--sub", "sf-1"), `"role" not set`},
		{"missing --sub", append(base, "--role", "union"), `"sub" not set`},
		{"missing --key", []string{"token", "mint", "--iss", testIssuer, "--sub", "a", "--role", "union"}, `"key" not set`},
		{"unknown role", append(base, "--sub", "sf-1", "--role", "admin"), `--role: unknown role "admin"`},
		{"company role without --company-id", append(base, "--sub", "staff-7", "--role", "company"), "--company-id: required"},
		{"--company-id on another role", append(base, "--sub", "sf-1", "--role", "seafarer", "--company-id", "co-1"), "--company-id: only the company role"},
		{"non-positive --ttl", append(base, "--sub", "sf-1", "--role", "seafarer", "--ttl", "0s"), "--ttl: must be positive"},
		{"key file that does not exist", []string{"token", "mint", "--key", filepath.Join(t.TempDir(), "nope.pem"), "--iss", testIssuer, "--sub", "a", "--role", "union"}, "nope.pem"},
		{"a stray argument", append(base, "--sub", "sf-1", "--role", "seafarer", "extra"), "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCaptured(tt.args...)
			require.ErrorContains(t, err, tt.wantErr)
			require.Empty(t, out, "no token is printed")
		})
	}
}

func TestTokenKeygen_WritesAPrivateKeyOnlyItsOwnerReads(t *testing.T) {
	keyPath, jwksPath := MustKeygen(t, token.AlgES256, "k1")
	info, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	jwks, err := os.ReadFile(jwksPath)
	require.NoError(t, err)
	require.Contains(t, string(jwks), `"kid": "k1"`)
	require.NotContains(t, string(jwks), `"d"`, "the JWKS holds no private part")
}

func TestTokenKeygen_DoesNotOverwriteWithoutForce(t *testing.T) {
	keyPath, jwksPath := MustKeygen(t, token.AlgEdDSA, "k1")
	before, err := os.ReadFile(keyPath)
	require.NoError(t, err)

	_, err = runCaptured("token", "keygen", "--out-key", keyPath, "--out-jwks", jwksPath)
	require.ErrorContains(t, err, "already exists")
	after, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	require.Equal(t, before, after)

	require.NoError(t, os.Chmod(keyPath, 0o644))
	MustRun(t, "token", "keygen", "--force", "--kid", "k2", "--out-key", keyPath, "--out-jwks", jwksPath)
	after, err = os.ReadFile(keyPath)
	require.NoError(t, err)
	require.NotEqual(t, before, after)
	info, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "--force resets a loose mode")
}

func TestTokenKeygen_RefusesAlgorithmsTheServerDoesNotAccept(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"HS256", "none", "ES384"} {
		t.Run(alg, func(t *testing.T) {
			keyPath := filepath.Join(dir, alg+".pem")
			_, err := runCaptured("token", "keygen", "--alg", alg, "--out-key", keyPath, "--out-jwks", filepath.Join(dir, alg+".json"))
			require.Error(t, err)
			require.NoFileExists(t, keyPath)
		})
	}
}

func TestRoot_PersistentFlagsBeatEnvironmentWhichBeatsDefaults(t *testing.T) {
	env := map[string]string{"WUYOU_SERVER": "https://env.example", "WUYOU_TOKEN": "env-token"}
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantServer string
		wantToken  string
	}{
		{"defaults without environment", nil, nil, "http://localhost:8080", ""},
		{"environment fills unset flags", env, nil, "https://env.example", "env-token"},
		{"flags beat the environment", env, []string{"--server", "https://flag.example", "--token", "flag-token"}, "https://flag.example", "flag-token"},
		{"one flag, the other from the environment", env, []string{"--token", "flag-token"}, "https://env.example", "flag-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &globalOptions{}
			root := newRootCmd(opts, func(k string) string { return tt.env[k] })
			root.AddCommand(&cobra.Command{Use: "probe", RunE: func(*cobra.Command, []string) error { return nil }})
			root.SetArgs(append([]string{"probe"}, tt.args...))
			root.SetOut(&bytes.Buffer{})
			require.NoError(t, root.Execute())
			require.Equal(t, tt.wantServer, opts.Server)
			require.Equal(t, tt.wantToken, opts.Token)
		})
	}
}

func TestRoot_HelpDoesNotShowTheTokenFromTheEnvironment(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd(&globalOptions{}, func(k string) string {
		if k == "WUYOU_TOKEN" {
			return "secret-token"
		}
		return ""
	})
	root.SetArgs([]string{"--help"})
	root.SetOut(&out)
	require.NoError(t, root.Execute())
	require.Contains(t, out.String(), "--token")
	require.NotContains(t, out.String(), "secret-token")
}
