package quota

import "github.com/redis/go-redis/v9"

// A grant is stored as one field of the seafarer's grants hash, its value
// "granted:remaining:effective:expires:priority:issued_ms:voided:programme[:unit[:thresholds]]"
// (times in unix seconds, issued in unix milliseconds, voided 0 or 1,
// amounts in the unit). The unit is bytes or sms; a seconds grant leaves
// the ninth field out, as every grant written before units did, so "" or
// absent is seconds. The tenth field is the programme's notify_at other
// than the default, its keys joined by commas ("p20,r600", notify.go);
// absent is the default 20 percent, as every grant written before
// thresholds has it (a seconds grant with thresholds has an empty ninth
// field). One compact string per grant keeps the hash in listpack
// encoding.
//
// Every script below touches only keys under one seafarer's hash tag
// ("<prefix>:{s:<id>}"), so it runs unchanged on Redis Cluster.

// luaParseGrant is shared by the scripts that read grants. Fields may be
// empty (a grant without a programme ends in ":"), so the split keeps empty
// fields: skipping them would leave prog nil and fail the script part-way,
// after earlier grants of the same call were already written.
const luaParseGrant = `
local function parse(id, v)
  local granted, rem, eff, exp, prio, iss, void, prog, unit, notify =
    string.match(v, '^([^:]*):([^:]*):([^:]*):([^:]*):([^:]*):([^:]*):([^:]*):?([^:]*):?([^:]*):?([^:]*)')
  return {id=id, granted=tonumber(granted), rem=tonumber(rem), eff=tonumber(eff), exp=tonumber(exp),
          prio=tonumber(prio), iss=tonumber(iss), void=void, prog=prog, unit=unit, notify=notify}
end
local function encode(g)
  local v = g.granted..':'..g.rem..':'..g.eff..':'..g.exp..':'..g.prio..':'..g.iss..':'..g.void..':'..g.prog
  if g.notify ~= '' then return v..':'..g.unit..':'..g.notify end
  if g.unit ~= '' then v = v..':'..g.unit end
  return v
end
`

// debitScript applies one call to a seafarer's grants, at most once. Its
// keys and arguments are built in one place, debitCall.run (redis.go), and
// named at the top of the script. Every key is in the seafarer's slot.
//
// Units: the call draws only from grants of its unit (ARGV unit, "" for
// seconds), and everything below that speaks of "the grants" — totals, the
// grant set, the low and exhausted marks — means the grants of that unit:
// the others are not even parsed beyond their unit.
//
// Reply: {duplicate 0|1, record, remaining now, granted now, first call
// time, notes, grant id, programme id, …}: remaining and granted sum the
// grants of the unit active at now; notes are the notifications this identity
// triggered, each "kind set remaining granted at_ms date" (kind
// low|exhausted; set names the grant set, see below; date in unix seconds,
// 0 for none, see dateOf); the pairs name the programme of each
// grant drawn (records do not repeat it; every grant's on a duplicate). On a
// duplicate nothing changes: the first call time is the stored one, the
// notes are those the first application triggered, and the record is the
// first application's while it is pending (not yet recorded in the system
// of record, see Recorded), else "".
//
// What the script writes is only what the next call needs: the grants'
// remaining seconds, the identity (seen, for the dedupe window), the
// record until it is recorded in PostgreSQL (pending), this month's
// billable and overage seconds (the allowance's figures) and the notes.
// Statements, reconciliation and programme figures are SQL over the ledger.
// Nothing is written before every check has passed, so an error leaves the
// seafarer's keys as they were.
//
// Notifications: the grant set is the sorted ids of the grants active at
// now (its SHA-1). Its thresholds are the union of its grants' (the tenth
// field; none is lowPercent percent); "low" is announced for each
// threshold this call takes the set's remaining from at or above its level
// to below it (level: floor(granted × percent / 100), or the remaining
// amount), "exhausted" when it takes it to zero. Within one set remaining
// only falls, so each is announced at most once per set (note key
// "low:<threshold>:<set>", e.g. "low:p20:…", "low:r600:…", or
// "exhausted:<set>"); the notes hash remembers which identity announced
// it, so a redelivery repeats exactly the same notification. A low note
// names its threshold as its last word. Notes remembered before dates
// have none (parseNote reads both). The thresholds are read only when
// the call drew something.
//
// Sessions (sessions.go): the sessions hash holds the reservations of
// real-time calls. Those of the call's unit still valid at now hold part of
// the remaining amount, which this call cannot draw; the call's own
// session (sessionID) holds nothing against it. sessionMode says what the
// call is to its session: "term" is the session's terminate (its charge:
// the session must be open, or already charged by this identity, a
// repeat, or by the carrier's record, reply {2, …}); "cdr" is the
// carrier's record of a call whose call_id is sessionID: it charges an open
// session's call as any call and closes the session, and settles a
// terminated one with an adjust entry of the difference (record kind "a",
// amounts signed: more drawn, or covered time given back to the grants the
// session drew, overage first); "" or a session of another unit: no link.
var debitScript = redis.NewScript(luaParseGrant + `
local grantsKey, seenKey, pendingKey, monthKey, notesKey, sessKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
-- The texts are handed to redis.call as they came: a Lua number would be
-- formatted back into text on every call.
local identity, callTimeText, billableText = ARGV[1], ARGV[2], ARGV[3]
local callTime, billable = tonumber(callTimeText), tonumber(billableText)
local dedupeCutoff, recordHead, pendingTTL = ARGV[4], ARGV[5], ARGV[6]
local overagePrice, incr, currencyEscaped = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local now, wprice, period = tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12]
local monthTTL, lowPercent, notesTTL, atMs = ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15]), ARGV[16]
local unit, monthBillable, monthOverage = ARGV[17], ARGV[18], ARGV[19]
local billableSuffix, sessionID, sessionMode, sessionsTTL = ARGV[20], ARGV[21], ARGV[22], ARGV[23]

-- activeTotals sums the grants active at now.
local function activeTotals(grants)
  local rem, granted = 0, 0
  for _, g in ipairs(grants) do
    if g.void == '0' and g.eff <= now and now < g.exp then
      rem = rem + g.rem
      granted = granted + g.granted
    end
  end
  return rem, granted
end
-- setOf names the set of grants active at now: the SHA-1 of their sorted
-- ids. Only an announcement needs it, so it is computed then.
local function setOf(grants)
  local ids = {}
  for _, g in ipairs(grants) do
    if g.void == '0' and g.eff <= now and now < g.exp then ids[#ids+1] = g.id end
  end
  table.sort(ids)
  return redis.sha1hex(table.concat(ids, ' '))
end
-- readGrants reads and parses the grants of the call's unit; it returns
-- nil and an error reply when one cannot be read, before anything is
-- written. For a bytes or sms call, a value not ending in ":<unit>" cannot
-- be of its unit and is skipped unparsed, as is one without ":<unit>:"
-- (thresholds follow the unit; a grant's value ending so is still checked
-- once parsed: its programme id might be the unit's word).
local suffix, infix = ':' .. unit, ':' .. unit .. ':'
local function readGrants()
  local all, grants = redis.call('HGETALL', grantsKey), {}
  for i = 1, #all, 2 do
    local v = all[i+1]
    if unit == '' or string.sub(v, -#suffix) == suffix or string.find(v, infix, 1, true) then
      local g = parse(all[i], v)
      if not (g.granted and g.rem and g.eff and g.exp and g.prio and g.iss) then
        return nil, redis.error_reply('EBADGRANT grant ' .. all[i] .. ' cannot be read: ' .. v)
      end
      if g.unit == unit then grants[#grants+1] = g end
    end
  end
  return grants
end
-- notesOf lists the notifications identity announced.
local function notesOf()
  local all, out = redis.call('HGETALL', notesKey), {}
  for i = 1, #all, 2 do
    local who, rest = string.match(all[i+1], '^(%S+) (.*)$')
    if who == identity then
      local kind, set = string.match(all[i], '^(%a+):(%x+)$')
      if kind then
        out[#out+1] = kind .. ' ' .. set .. ' ' .. rest
      else
        local threshold
        kind, threshold, set = string.match(all[i], '^(%a+):(%w+):(%x+)$')
        out[#out+1] = kind .. ' ' .. set .. ' ' .. rest .. ' ' .. threshold
      end
    end
  end
  return out
end

local grants, bad = readGrants()
if not grants then return bad end
-- The sessions: the call's own (sess), and what the others of its unit
-- hold at now.
local sess, held = nil, 0
do
  local all = redis.call('HGETALL', sessKey)
  for i = 1, #all, 2 do
    local s = cjson.decode(all[i+1])
    if all[i] == sessionID then
      sess = s
    elseif s.st == 'open' and s.u == unit and s.exp > now then
      held = held + s.hold
    end
  end
end
if sess and sess.u ~= unit then sess = nil end
if sessionMode == 'term' then
  if not sess then return redis.error_reply('ENOSESSION session ' .. sessionID .. ' is not open here') end
  if sess.by == 'cdr' then
    local rem, granted = activeTotals(grants)
    return {2, cjson.encode(sess), rem, granted, '', {}}
  end
end
-- Remember the identity unless it is remembered already (a repeat). The
-- checks are behind us: from here on the script writes.
if redis.call('ZADD', seenKey, 'NX', callTimeText, identity) == 0 then
  -- A repeat changes nothing but reports the balance as it is, so the
  -- caller can repeat the effects of a first application it lost in a crash.
  local seen = redis.call('ZSCORE', seenKey, identity)
  local rem, granted = activeTotals(grants)
  local rec = redis.call('HGET', pendingKey, identity) or ''
  local reply = {1, rec, rem, granted, seen, notesOf()}
  for _, g in ipairs(grants) do reply[#reply+1] = g.id; reply[#reply+1] = g.prog end
  return reply
end
local remBefore, grantedNow = activeTotals(grants)
-- What this entry bills: the call's billable amount, or for the carrier's
-- record of a terminated session the difference from the session's charge.
local adjusting = sessionMode == 'cdr' and sess ~= nil and sess.st == 'term'
local amountBillable, head = billable, recordHead
if adjusting then
  amountBillable, head = billable - sess.ch, 'a' .. string.sub(recordHead, 2)
end
local covered, overage = 0, 0
local draws, taken = {}, {}
if amountBillable >= 0 then
  local cand = {}
  -- What the sessions of others hold is not this call's to draw.
  local avail = -held
  for _, g in ipairs(grants) do
    if g.void == '0' and g.rem > 0 and g.eff <= callTime and callTime < g.exp then
      cand[#cand+1] = g
      avail = avail + g.rem
    end
  end
  table.sort(cand, function(a, b)
    if a.prio ~= b.prio then return a.prio < b.prio end
    if a.exp ~= b.exp then return a.exp < b.exp end
    if a.iss ~= b.iss then return a.iss < b.iss end
    return a.id < b.id
  end)
  local need = math.max(0, math.min(amountBillable, avail))
  for _, g in ipairs(cand) do
    if need == 0 then break end
    local take = math.min(need, g.rem)
    g.rem = g.rem - take
    need = need - take
    covered = covered + take
    redis.call('HSET', grantsKey, g.id, encode(g))
    draws[#draws+1] = g.id .. ':' .. take
    taken[#taken+1] = {g.prog, g.id}
  end
  overage = amountBillable - covered
else
  -- The carrier's record is shorter than the session's charge: give the
  -- difference back, overage first, then covered time to the grants the
  -- session drew, the last drawn first. A grant voided since keeps
  -- nothing back, so the difference is then smaller than the records'.
  local back = -amountBillable
  overage = 0 - math.min(back, sess.ov) -- never -0, which HINCRBY refuses
  back = back + overage
  local drawn = {}
  for d in string.gmatch(sess.dr or '', '%S+') do drawn[#drawn+1] = d end
  local byID = {}
  for _, g in ipairs(grants) do byID[g.id] = g end
  for i = #drawn, 1, -1 do
    if back == 0 then break end
    local id, n = string.match(drawn[i], '^(.*):(%d+)$')
    local g = byID[id]
    if g and g.void == '0' then
      local give = math.min(back, tonumber(n))
      g.rem = g.rem + give
      back = back - give
      covered = covered - give
      redis.call('HSET', grantsKey, g.id, encode(g))
      draws[#draws+1] = g.id .. ':' .. (0 - give)
      taken[#taken+1] = {g.prog, g.id}
    end
  end
  amountBillable = covered + overage
end
-- Pricing per started increment, ceil(seconds / incr) * price: the rule's
-- home is billing.PricePerStartedIncrement. A script cannot call Go, so the
-- rule is written again here, and TestDebitScriptPricesPerStartedIncrementAsBillingDoes
-- (quota) holds the overage amount and the welfare cost to billing's.
local function price(n, p) return math.floor((n + incr - 1) / incr) * p end
local amount, welfare = price(overage, overagePrice), price(covered, wprice)
if adjusting then
  -- An adjust moves the call's figures to what the carrier's record
  -- says: its prices are the difference of the whole call's.
  amount = price(sess.ov + overage, overagePrice) - sess.amt
  welfare = price(sess.cov + covered, wprice) - sess.wel
end
-- The statement period is the call's own; the system of record decides
-- whether a closed period moves it (PGLedger.Append).
local rec = head .. amountBillable .. billableSuffix .. ' ' .. covered .. ' ' .. amount .. ' ' .. currencyEscaped .. ' ' .. welfare .. ' ' .. period .. ' '
if #draws > 0 then rec = rec .. ' ' .. table.concat(draws, ' ') end
-- The session: a terminate charges it and keeps what it drew until the
-- carrier's record comes; that record closes it (charging an open one as
-- any call, or settling a terminated one with the adjust above).
if sess and (sessionMode == 'term' or sessionMode == 'cdr') and sess.st ~= 'done' then
  if adjusting then
    sess.ch, sess.cov, sess.ov = billable, sess.cov + covered, sess.ov + overage
    sess.amt, sess.wel = sess.amt + amount, sess.wel + welfare
  else
    sess.ch, sess.cov, sess.ov, sess.amt, sess.wel = billable, covered, overage, amount, welfare
    sess.dr = table.concat(draws, ' ')
  end
  if sessionMode == 'term' then sess.st, sess.by = 'term', 'term' else sess.st, sess.by = 'done', sess.by or 'cdr' end
  sess.hold, sess['end'] = 0, now
  redis.call('HSET', sessKey, sessionID, cjson.encode(sess))
  redis.call('EXPIRE', sessKey, sessionsTTL)
end
-- Forget identities older than the window, but never this call's own: a
-- call at the window's edge must stay remembered, so a repeat later in the
-- same batch is still a duplicate, answered with this record.
local forgetBelow = dedupeCutoff
if callTime < tonumber(dedupeCutoff) then forgetBelow = callTimeText end
redis.call('ZREMRANGEBYSCORE', seenKey, '-inf', '(' .. forgetBelow)
redis.call('HSET', pendingKey, identity, rec)
redis.call('EXPIRE', pendingKey, pendingTTL)
-- This month's figures, by call time, for the allowance. The key's expiry
-- is a deadline after the month's end: set when a call creates the key.
if adjusting then
  redis.call('HINCRBY', monthKey, monthBillable, amountBillable)
  if redis.call('TTL', monthKey) == -1 then redis.call('EXPIRE', monthKey, monthTTL) end
elseif redis.call('HINCRBY', monthKey, monthBillable, amountBillable) == amountBillable then
  redis.call('EXPIRE', monthKey, monthTTL)
end
redis.call('HINCRBY', monthKey, monthOverage, overage)
local remAfter = activeTotals(grants)
local notes = {}
local set
-- dateOf is the date a note names, unix seconds (0: none): for low, the
-- earliest expiry among the grants active at now with something left
-- (when what is left starts to lapse); for exhausted, the earliest start
-- of a pending grant with something left (when more comes).
local function dateOf(kind)
  local d = 0
  for _, g in ipairs(grants) do
    if g.void == '0' and g.rem > 0 and g.eff < g.exp then
      if kind == 'low' and g.eff <= now and now < g.exp then
        if d == 0 or g.exp < d then d = g.exp end
      elseif kind == 'exhausted' and now < g.eff then
        if d == 0 or g.eff < d then d = g.eff end
      end
    end
  end
  return d
end
-- announce remembers a note under key once per set (threshold: the low
-- note's, else nil), with its date, so a repeat names the same one.
local function announce(kind, threshold)
  set = set or setOf(grants)
  local figures = remAfter .. ' ' .. grantedNow .. ' ' .. atMs .. ' ' .. dateOf(kind)
  local v = identity .. ' ' .. figures
  local key, note = kind .. ':' .. set, kind .. ' ' .. set .. ' ' .. figures
  if threshold then key, note = kind .. ':' .. threshold .. ':' .. set, note .. ' ' .. threshold end
  if redis.call('HSETNX', notesKey, key, v) == 1 then notes[#notes+1] = note end
end
-- crossed announces threshold key (p<percent> or r<remaining>) if this
-- call took remaining from at or above its level to below it.
local function crossed(key, done)
  if done[key] then return end
  done[key] = true
  local n = tonumber(string.sub(key, 2))
  if not n then return end
  local level = n
  if string.sub(key, 1, 1) == 'p' then level = math.floor(grantedNow * n / 100) end
  if remAfter < level and remBefore >= level then announce('low', key) end
end
if grantedNow > 0 and remAfter < remBefore then
  -- The set's thresholds: the union of its grants' (none: the default).
  local done = {}
  for _, g in ipairs(grants) do
    if g.void == '0' and g.eff <= now and now < g.exp then
      if g.notify == '' then
        crossed('p' .. lowPercent, done)
      else
        for key in string.gmatch(g.notify, '[^,]+') do crossed(key, done) end
      end
    end
  end
  if remAfter == 0 then announce('exhausted') end
  if #notes > 0 then redis.call('EXPIRE', notesKey, notesTTL) end
end
local reply = {0, rec, remAfter, grantedNow, 0, notes}
for _, d in ipairs(taken) do reply[#reply+1] = d[2]; reply[#reply+1] = d[1] end
return reply
`)

// voidScript sets a grant's remaining amount to zero and marks it voided,
// its ledger record (the head given, then the amount removed and, for a
// unit other than seconds, ":<unit>") pending until it is recorded in the
// system of record.
// Reply: {the amount removed, the grant's unit ("" for seconds)}; error
// "ENOTFOUND" or "EVOIDED".
var voidScript = redis.NewScript(luaParseGrant + `
local grantsKey, pendingKey = KEYS[1], KEYS[2]
local grantID, pendingField, recordHead, pendingTTL = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local v = redis.call('HGET', grantsKey, grantID)
if not v then return redis.error_reply('ENOTFOUND') end
local g = parse(grantID, v)
if g.void == '1' then return redis.error_reply('EVOIDED') end
local removed = g.rem
g.rem = 0
g.void = '1'
redis.call('HSET', grantsKey, grantID, encode(g))
local removedText = removed
if g.unit ~= '' then removedText = removed .. ':' .. g.unit end
redis.call('HSET', pendingKey, pendingField, recordHead .. removedText)
redis.call('EXPIRE', pendingKey, pendingTTL)
return {removed, g.unit}
`)
