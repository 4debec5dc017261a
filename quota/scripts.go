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
// KEYS[3] ledger bucket of the call's week (see ledger.go), KEYS[4] the
// seafarer's "used:<programme>" counters: the seconds drawn from each
// programme, which only grow (see SyncProgrammeUsage).
// ARGV[1] identity, ARGV[2] call time (unix s), ARGV[3] billable seconds,
// ARGV[4] dedupe cutoff (unix s; identities with an older call time are
// forgotten), ARGV[5] the entry's record up to its billable seconds and a
// space, ARGV[6] what precedes a stored record of this identity in the
// bucket, ARGV[7] the bucket's time to live (s), ARGV[8] overage price per
// increment (minor units), ARGV[9] increment (s), ARGV[10] currency (escaped
// for the record), ARGV[11] period "YYYY-MM" of the call, ARGV[12] now (unix s).
// Statements (statements.go): KEYS[5] statement figures of the call's period,
// KEYS[6] those of the first period after it believed open, KEYS[7] figures
// by MSISDN of the call's period; ARGV[13] wholesale price per increment
// (minor units), ARGV[14] "1" when the call's period is closed by the cached
// list, ARGV[15] the period of KEYS[6], ARGV[16] MSISDN, ARGV[17] expiry of
// KEYS[7] (unix s), ARGV[18] the currency as is.
// Reply: {duplicate 0|1, record, remaining now, granted now, first call
// time, grant id, programme id, …}: remaining and granted sum the grants
// active at now; the pairs name the programme of each grant drawn (records
// do not repeat it; every grant's on a duplicate). On a duplicate nothing
// changes; the first call time is the stored one (else 0), and the record
// is "" when it expired or when the repeat names another call time (its
// bucket may be another; the caller reads it from the first's).
// Error "ESTALE …" (before any write) when the period of KEYS[6] turns out to
// be closed as well.
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
local seen = redis.call('ZSCORE', KEYS[2], ARGV[1])
if seen then
  -- A repeat changes nothing but reports the balance as it is, so the
  -- caller can repeat the effects of a first application it lost in a crash.
  local all, grants = redis.call('HGETALL', KEYS[1]), {}
  for i = 1, #all, 2 do grants[#grants+1] = parse(all[i], all[i+1]) end
  local rem, granted = balance(grants)
  local rec = ''
  local b = tonumber(seen) == tonumber(ARGV[2]) and redis.call('GET', KEYS[3])
  if b then
    local i = string.find(b, ARGV[6], 1, true)
    if i then
      local j = string.find(b, '\n', i + 1, true)
      rec = string.sub(b, i + 1, (j or 0) - 1)
    end
  end
  local reply = {1, rec, rem, granted, seen}
  for _, g in ipairs(grants) do reply[#reply+1] = g.id; reply[#reply+1] = g.prog end
  return reply
end
local t = tonumber(ARGV[2])
-- The statement that counts this call: its own period's (KEYS[5]) unless
-- that period is closed, by the cached list or because this seafarer's
-- figures of it are frozen; then the first open period after it (KEYS[6])
-- as an adjustment naming the call's period. Checked before any write.
local stmtp, stmtk, adjp = ARGV[11], KEYS[5], ''
if ARGV[14] == '1' or redis.call('HEXISTS', KEYS[5], 'frozen') == 1 then
  if redis.call('HEXISTS', KEYS[6], 'frozen') == 1 then
    return redis.error_reply('ESTALE closed periods: ' .. ARGV[15] .. ' is closed too')
  end
  stmtp, stmtk, adjp = ARGV[15], KEYS[6], ARGV[11]
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
local billable = tonumber(ARGV[3])
local need = billable
local covered = 0
local draws, taken = {}, {}
for _, g in ipairs(cand) do
  if need == 0 then break end
  local take = math.min(need, g.rem)
  g.rem = g.rem - take
  need = need - take
  covered = covered + take
  redis.call('HSET', KEYS[1], g.id, encode(g))
  draws[#draws+1] = g.id .. ':' .. take
  taken[#taken+1] = {g.prog, take, g.id}
  if g.prog ~= '' then
    redis.call('HINCRBY', KEYS[4], 'used:' .. g.prog, take)
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
local rec = ARGV[5] .. covered .. ' ' .. amount .. ' ' .. ARGV[10] .. ' ' .. welfare .. ' ' .. stmtp .. ' ' .. adjp
if #draws > 0 then rec = rec .. ' ' .. table.concat(draws, ' ') end
-- Forget old identities before remembering this call's, so a call at the
-- window's edge is not forgotten by its own debit: a repeat later in the
-- same batch must still be a duplicate, answered with this record.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[2], t, ARGV[1])
local b = redis.call('GET', KEYS[3]) or ''
redis.call('SET', KEYS[3], b .. '\n' .. rec, 'EX', ARGV[7])
-- Statement figures; an adjustment's fields are prefixed "a:<its period>:".
local pre = ''
if adjp ~= '' then pre = 'a:' .. adjp .. ':' end
redis.call('HINCRBY', stmtk, pre .. 'calls', 1)
redis.call('HINCRBY', stmtk, pre .. 'billable', billable)
redis.call('HINCRBY', stmtk, pre .. 'covered', covered)
redis.call('HINCRBY', stmtk, pre .. 'overage', need)
redis.call('HINCRBY', stmtk, pre .. 'amount', amount)
redis.call('HINCRBY', stmtk, pre .. 'welfare', welfare)
redis.call('HSET', stmtk, 'cur', ARGV[18])
for _, id in ipairs(sorder) do
  local q = pre .. 'p:' .. id .. ':'
  redis.call('HINCRBY', stmtk, q .. 'calls', 1)
  redis.call('HINCRBY', stmtk, q .. 'covered', shares[id][1])
  redis.call('HINCRBY', stmtk, q .. 'welfare', shares[id][2])
end
-- By the call's own period and the MSISDN it was made from (reconciliation).
local m = ARGV[16]
redis.call('HINCRBY', KEYS[7], m .. ':calls', 1)
redis.call('HINCRBY', KEYS[7], m .. ':billable', billable)
redis.call('HINCRBY', KEYS[7], m .. ':covered', covered)
redis.call('EXPIREAT', KEYS[7], tonumber(ARGV[17]))
local rem, granted = balance(grants)
local reply = {0, rec, rem, granted, 0}
for _, d in ipairs(taken) do reply[#reply+1] = d[3]; reply[#reply+1] = d[1] end
return reply
`)

// grantScript adds a grant once.
//
// KEYS[1] grants hash, KEYS[2] ledger bucket of now.
// ARGV[1] grant id, ARGV[2] encoded grant, ARGV[3] ledger record,
// ARGV[4] the bucket's time to live (s).
// Reply: 1 when added, 0 when the grant already existed (nothing changes).
var grantScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local b = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[2], b .. '\n' .. ARGV[3], 'EX', ARGV[4])
return 1
`)

// voidScript sets a grant's remaining amount to zero and marks it voided.
//
// KEYS[1] grants hash, KEYS[2] ledger bucket of now.
// ARGV[1] grant id, ARGV[2] the ledger record without the seconds removed,
// ARGV[3] the bucket's time to live (s).
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
local b = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[2], b .. '\n' .. ARGV[2] .. removed, 'EX', ARGV[3])
return removed
`)
