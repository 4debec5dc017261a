package quota

import "github.com/redis/go-redis/v9"

// A grant is stored as one field of the seafarer's grants hash, its value
// "granted:remaining:effective:expires:priority:issued_ms:voided:programme"
// (times in unix seconds, issued in unix milliseconds, voided 0 or 1). One
// compact string per grant keeps the hash in listpack encoding.
//
// Every script below touches only keys under one seafarer's hash tag
// ("<prefix>:{s:<id>}"), so it runs unchanged on Redis Cluster.

// luaParseGrant is shared by the scripts that read grants. Fields may be
// empty (a grant without a programme ends in ":"), so the split keeps empty
// fields: skipping them would leave prog nil and fail the script part-way,
// after earlier grants of the same call were already written.
const luaParseGrant = `
local function parse(id, v)
  local f = {}
  for x in string.gmatch(v .. ':', '([^:]*):') do f[#f+1] = x end
  return {id=id, granted=tonumber(f[1]), rem=tonumber(f[2]), eff=tonumber(f[3]), exp=tonumber(f[4]),
          prio=tonumber(f[5]), iss=tonumber(f[6]), void=f[7], prog=f[8]}
end
local function encode(g)
  return g.granted..':'..g.rem..':'..g.eff..':'..g.exp..':'..g.prio..':'..g.iss..':'..g.void..':'..g.prog
end
`

// debitScript applies one call to a seafarer's grants, at most once.
//
// KEYS[1] grants hash, KEYS[2] seen-identities zset (score: call time),
// KEYS[3] ledger hash (entry id -> JSON), KEYS[4] ledger index zset (score:
// the entry's time), KEYS[5] per-period usage counters hash.
// ARGV[1] identity member, ARGV[2] entry id, ARGV[3] call time (unix s),
// ARGV[4] billable seconds, ARGV[5] dedupe cutoff (unix s; identities with an
// older call time are forgotten), ARGV[6] ledger cutoff (unix s),
// ARGV[7] entry JSON up to and including `"covered_seconds":`,
// ARGV[8] overage price per increment (minor units), ARGV[9] increment (s),
// ARGV[10] currency, ARGV[11] period "YYYY-MM", ARGV[12] now (unix s).
// Statements (statements.go): KEYS[6] statement figures of the call's period,
// KEYS[7] those of the first period after it believed open, KEYS[8] figures
// by MSISDN of the call's period; ARGV[13] wholesale price per increment
// (minor units), ARGV[14] "1" when the call's period is closed by the cached
// list, ARGV[15] the period of KEYS[7], ARGV[16] MSISDN, ARGV[17] expiry of
// KEYS[8] (unix s).
// Reply: {duplicate 0|1, entry JSON, remaining now, granted now} where the
// last two sum grants active at now; on a duplicate the stored entry is
// returned (or "" when trimmed) with the balance, and nothing changes.
// KEYS[5] also keeps "used:<programme>": the seconds this seafarer has drawn
// from each programme, which only grows (see SyncProgrammeUsage). Error "ESTALE …" (before
// any write) when the period of KEYS[7] turns out to be closed as well.
var debitScript = redis.NewScript(luaParseGrant + `
local now = tonumber(ARGV[12])
-- balance sums the grants active at now.
local function balance(grants)
  local rem, granted = 0, 0
  for _, g in ipairs(grants) do
    if g.void == '0' and g.eff <= now and now < g.exp then
      rem = rem + g.rem
      granted = granted + g.granted
    end
  end
  return rem, granted
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  -- A repeat changes nothing but reports the balance as it is, so the
  -- caller can repeat the effects of a first application it lost in a crash.
  local all, grants = redis.call('HGETALL', KEYS[1]), {}
  for i = 1, #all, 2 do grants[#grants+1] = parse(all[i], all[i+1]) end
  local rem, granted = balance(grants)
  return {1, redis.call('HGET', KEYS[3], ARGV[2]) or '', rem, granted}
end
local t = tonumber(ARGV[3])
-- The statement that counts this call: its own period's (KEYS[6]) unless
-- that period is closed, by the cached list or because this seafarer's
-- figures of it are frozen; then the first open period after it (KEYS[7])
-- as an adjustment naming the call's period. Checked before any write.
local stmtp, stmtk, adjp = ARGV[11], KEYS[6], ''
if ARGV[14] == '1' or redis.call('HEXISTS', KEYS[6], 'frozen') == 1 then
  if redis.call('HEXISTS', KEYS[7], 'frozen') == 1 then
    return redis.error_reply('ESTALE closed periods: ' .. ARGV[15] .. ' is closed too')
  end
  stmtp, stmtk, adjp = ARGV[15], KEYS[7], ARGV[11]
end
local all = redis.call('HGETALL', KEYS[1])
local grants, cand = {}, {}
for i = 1, #all, 2 do
  local g = parse(all[i], all[i+1])
  grants[#grants+1] = g
  if g.void == '0' and g.rem > 0 and g.eff <= t and t < g.exp then cand[#cand+1] = g end
end
table.sort(cand, function(a, b)
  if a.prio ~= b.prio then return a.prio < b.prio end
  if a.exp ~= b.exp then return a.exp < b.exp end
  if a.iss ~= b.iss then return a.iss < b.iss end
  return a.id < b.id
end)
local need = tonumber(ARGV[4])
local covered = 0
local draws, taken = {}, {}
for _, g in ipairs(cand) do
  if need == 0 then break end
  local take = math.min(need, g.rem)
  g.rem = g.rem - take
  need = need - take
  covered = covered + take
  redis.call('HSET', KEYS[1], g.id, encode(g))
  draws[#draws+1] = '{"grant_id":"' .. g.id .. '","programme_id":"' .. g.prog .. '","seconds":' .. take .. '}'
  taken[#taken+1] = {g.prog, take}
  if g.prog ~= '' then
    -- cumulative seconds this seafarer drew from the programme (only grows)
    redis.call('HINCRBY', KEYS[5], 'used:' .. g.prog, take)
  end
end
local incr = tonumber(ARGV[9])
local amount = math.floor((need + incr - 1) / incr) * tonumber(ARGV[8])
-- Welfare cost: the wholesale price per started increment of covered time.
-- Each increment is charged to the programme whose draw starts it, so the
-- programmes' shares add up to the call's cost.
local wprice = tonumber(ARGV[13])
local welfare = math.floor((covered + incr - 1) / incr) * wprice
local shares, sorder, drawn = {}, {}, 0
for _, d in ipairs(taken) do
  local before = math.floor((drawn + incr - 1) / incr)
  drawn = drawn + d[2]
  if d[1] ~= '' then
    local sh = shares[d[1]]
    if not sh then sh = {0, 0}; shares[d[1]] = sh; sorder[#sorder+1] = d[1] end
    sh[1] = sh[1] + d[2]
    sh[2] = sh[2] + (math.floor((drawn + incr - 1) / incr) - before) * wprice
  end
end
local entry = ARGV[7] .. covered .. ',"overage_seconds":' .. need ..
  ',"overage_amount":{"minor":' .. amount .. ',"currency":"' .. ARGV[10] .. '"}' ..
  ',"welfare_cost":{"minor":' .. welfare .. ',"currency":"' .. ARGV[10] .. '"}' ..
  ',"statement_period":"' .. stmtp .. '","adjusts_period":"' .. adjp .. '","draws":[' ..
  table.concat(draws, ',') .. ']}'
-- Forget old identities and entries before storing this call's, so a call
-- at the window's edge is not forgotten by its own debit: a repeat later in
-- the same batch must still be a duplicate, answered with this entry.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[6], 'LIMIT', 0, 64)
if #old > 0 then
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('ZREM', KEYS[4], unpack(old))
end
redis.call('HSET', KEYS[3], ARGV[2], entry)
redis.call('ZADD', KEYS[4], t, ARGV[2])
redis.call('ZADD', KEYS[2], t, ARGV[1])
local p = ARGV[11]
redis.call('HINCRBY', KEYS[5], p .. ':calls', 1)
redis.call('HINCRBY', KEYS[5], p .. ':billable', tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[5], p .. ':covered', covered)
redis.call('HINCRBY', KEYS[5], p .. ':overage', need)
redis.call('HINCRBY', KEYS[5], p .. ':amount', amount)
-- Statement figures; an adjustment's fields are prefixed "a:<its period>:".
local pre = ''
if adjp ~= '' then pre = 'a:' .. adjp .. ':' end
redis.call('HINCRBY', stmtk, pre .. 'calls', 1)
redis.call('HINCRBY', stmtk, pre .. 'billable', tonumber(ARGV[4]))
redis.call('HINCRBY', stmtk, pre .. 'covered', covered)
redis.call('HINCRBY', stmtk, pre .. 'overage', need)
redis.call('HINCRBY', stmtk, pre .. 'amount', amount)
redis.call('HINCRBY', stmtk, pre .. 'welfare', welfare)
redis.call('HSET', stmtk, 'cur', ARGV[10])
for _, id in ipairs(sorder) do
  local q = pre .. 'p:' .. id .. ':'
  redis.call('HINCRBY', stmtk, q .. 'calls', 1)
  redis.call('HINCRBY', stmtk, q .. 'covered', shares[id][1])
  redis.call('HINCRBY', stmtk, q .. 'welfare', shares[id][2])
end
-- By the call's own period and the MSISDN it was made from (reconciliation).
local m = ARGV[16]
redis.call('HINCRBY', KEYS[8], m .. ':calls', 1)
redis.call('HINCRBY', KEYS[8], m .. ':billable', tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[8], m .. ':covered', covered)
redis.call('EXPIREAT', KEYS[8], tonumber(ARGV[17]))
local rem, granted = balance(grants)
return {0, entry, rem, granted}
`)

// grantScript adds a grant once.
//
// KEYS[1] grants hash, KEYS[2] ledger hash, KEYS[3] ledger index zset.
// ARGV[1] grant id, ARGV[2] encoded grant, ARGV[3] ledger entry id,
// ARGV[4] ledger entry JSON, ARGV[5] entry score (unix s).
// Reply: 1 when added, 0 when the grant already existed (nothing changes).
var grantScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
return 1
`)

// voidScript sets a grant's remaining amount to zero and marks it voided.
//
// KEYS[1] grants hash, KEYS[2] ledger hash, KEYS[3] ledger index zset.
// ARGV[1] grant id, ARGV[2] ledger entry id, ARGV[3] entry JSON up to and
// including `"seconds":`, ARGV[4] entry score (unix s).
// Reply: the seconds removed; error "ENOTFOUND" or "EVOIDED".
var voidScript = redis.NewScript(luaParseGrant + `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return redis.error_reply('ENOTFOUND') end
local g = parse(ARGV[1], v)
if g.void == '1' then return redis.error_reply('EVOIDED') end
local removed = g.rem
g.rem = 0
g.void = '1'
redis.call('HSET', KEYS[1], ARGV[1], encode(g))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. removed .. ',"draws":[]}')
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return removed
`)
