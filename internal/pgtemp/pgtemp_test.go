package pgtemp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestStartServesAnEmptyDatabaseAndStopRemovesEveryTrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, nil)
	require.NoError(t, err, "this machine has PostgreSQL server binaries; Start must work here")
	t.Cleanup(func() { _ = s.Stop() })

	require.True(t, strings.HasPrefix(s.URL(), "postgres://postgres@127.0.0.1:"), s.URL())
	conn, err := pgx.Connect(ctx, s.URL())
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	require.Equal(t, Database, db)
	_, err = conn.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	require.NoError(t, err)
	var fsync string
	require.NoError(t, conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "off", fsync, "a throwaway server does not pay for durability")
	sockets, err := filepath.Glob(filepath.Join(s.Dir(), ".s.PGSQL.*"))
	require.NoError(t, err)
	require.NotEmpty(t, sockets, "the unix socket lives in the server's own folder")

	require.NoError(t, s.Stop())
	_, err = os.Stat(s.Dir())
	require.True(t, errors.Is(err, os.ErrNotExist), "the folder is removed: %v", err)
	require.Error(t, conn.Ping(ctx), "the session ended with the server")
	_, err = pgx.Connect(ctx, s.URL()+"&connect_timeout=2")
	require.Error(t, err, "nothing listens on the URL any more")
	require.NoError(t, s.Stop(), "stopping twice is harmless")
}

func TestTwoServersRunSideBySide(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := Start(ctx, nil)
	require.NoError(t, err)
	defer a.Stop()
	b, err := Start(ctx, nil)
	require.NoError(t, err)
	defer b.Stop()
	require.NotEqual(t, a.URL(), b.URL())
	require.NotEqual(t, a.Dir(), b.Dir())
	for _, s := range []*Server{a, b} {
		conn, err := pgx.Connect(ctx, s.URL())
		require.NoError(t, err)
		require.NoError(t, conn.Ping(ctx))
		conn.Close(ctx)
	}
}

// fakeInstall makes dir/<version>/bin with executable initdb and pg_ctl.
func fakeInstall(t *testing.T, root, version string, names ...string) string {
	t.Helper()
	bin := filepath.Join(root, version, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	for _, name := range names {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755))
	}
	return bin
}

func notOnPath(string) (string, error) { return "", errors.New("not found") }

func TestBinariesOnPathWinOverInstalledVersions(t *testing.T) {
	root := t.TempDir()
	fakeInstall(t, root, "17", "initdb", "pg_ctl")
	onPath := fakeInstall(t, root, "local", "initdb", "pg_ctl")
	lookPath := func(name string) (string, error) { return filepath.Join(onPath, name), nil }
	got, err := findBinDir(lookPath, []string{filepath.Join(root, "*", "bin")})
	require.NoError(t, err)
	require.Equal(t, onPath, got)
}

func TestASymlinkOnPathLeadsToItsRealFolder(t *testing.T) {
	root := t.TempDir()
	real := fakeInstall(t, root, "15", "initdb", "pg_ctl")
	links := filepath.Join(root, "links")
	require.NoError(t, os.MkdirAll(links, 0o755))
	require.NoError(t, os.Symlink(filepath.Join(real, "initdb"), filepath.Join(links, "initdb")))
	lookPath := func(name string) (string, error) { return filepath.Join(links, name), nil }
	got, err := findBinDir(lookPath, nil)
	require.NoError(t, err)
	require.Equal(t, real, got, "pg_ctl is found beside the real initdb, not beside the link")
}

func TestWithoutPathTheNewestInstalledVersionWins(t *testing.T) {
	root := t.TempDir()
	fakeInstall(t, root, "9.6", "initdb", "pg_ctl")
	fakeInstall(t, root, "15", "initdb", "pg_ctl")
	newest := fakeInstall(t, root, "16", "initdb", "pg_ctl")
	fakeInstall(t, root, "17", "initdb") // a client-only or broken install: no pg_ctl
	got, err := findBinDir(notOnPath, []string{filepath.Join(root, "*", "bin")})
	require.NoError(t, err)
	require.Equal(t, newest, got)
}

func TestNoServerBinariesSayInOneLineWhatToInstall(t *testing.T) {
	_, err := findBinDir(notOnPath, []string{filepath.Join(t.TempDir(), "*", "bin")})
	require.ErrorIs(t, err, ErrNoBinaries)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), "install PostgreSQL server binaries (Debian: apt-get install postgresql)")
}
