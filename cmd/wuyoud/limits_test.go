package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/token"
)

// TestWriteBudgetIsCountedInRedisUnderTheDeploymentPrefix: wuyoud wires the
// write rate limit to Redis, so every replica of a deployment draws on the
// same budget, and keeps its keys under WUYOU_REDIS_PREFIX.
func TestWriteBudgetIsCountedInRedisUnderTheDeploymentPrefix(t *testing.T) {
	h := mustHarness(t)
	req, err := http.NewRequest(http.MethodPost, h.base+"/v1/companies", strings.NewReader(`{"name":"Budget Lines","registration_no":"REG-RL"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token(token.RoleUnion, "staff-rl", ""))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.Equal(t, strconv.Itoa(api.DefaultWriteRateLimit), res.Header.Get("X-RateLimit-Limit"))
	require.Equal(t, strconv.Itoa(api.DefaultWriteRateLimit-1), res.Header.Get("X-RateLimit-Remaining"))

	rdb, _ := redistest.MustClient(t)
	ctx := context.Background()
	keys, err := redistest.Keys(ctx, rdb, h.cfg.RedisPrefix+":rl:write:tok:*") // every master when clustered
	require.NoError(t, err)
	require.Len(t, keys, 1, "one principal, one budget")
}
