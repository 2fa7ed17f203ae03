"""The one Lua script that decides a shared breaker's state, atomically, on Redis's clock.

KEYS[1] is the breaker's hash, KEYS[2] its half-open probes' leases (lease id -> the time it
was granted); both carry the hash tag ``{<prefix>:cb:<name>}`` so that they share a Redis
Cluster slot. Every time is Redis's own ``TIME``, in milliseconds; callers send durations.

ARGV: 1 op (``sync``, ``lease``, ``status``, ``switch``), 2-10 the breaker's settings in
milliseconds and counts (empty strings: take those stored by the last ``sync``), 11 a
random draw for the open duration's jitter, 12 the keys' time to live (ms), then per op:

- sync: 13 the generation the process saw, 14 its local trip (``1``/``0``), 15-17 its
  successes, failures and slow calls since its last sync, 18 a switch (empty: none),
  19 the switch's id, 20 the number of probe verdicts, then each verdict as (lease id,
  ``success`` | ``failure`` | ``drop``);
- lease: 13 the lease id asked for;
- switch: 13 the mode (``forced_open``, ``disabled``, ``closed``).

It returns {state, generation, open time left (ms), open duration (ms), window calls,
window failures, probes in flight, granted (1/0), retry after (ms, -1: never), the key's
epoch (empty when there is no key), the open duration before jitter (ms)}.

A read (``status``), and a ``sync`` or ``lease`` with nothing to tell of a breaker that has
no key yet, write nothing. The hash holds a fixed set of fields (the state, the ids of the
last few switches, and four per window bucket, ten buckets), so its size does not depend on
the call rate.

A process may send a verdict again (its first reply was lost): one for a lease no longer
held is ignored. A ``drop`` for a lease not granted yet (its question was cut off and is
still on its way) leaves a mark (``-1``) that refuses that lease when it comes; marks go
with the half-open stretch. A switch whose id is among the last few applied is not applied
again, so a switch sent twice cannot undo a later one.
"""

from __future__ import annotations

__all__ = ["SCRIPT", "SETTING_FIELDS"]

#: The settings' fields in the hash, in ARGV order (2-10).
SETTING_FIELDS = ("wms", "nb", "mc", "fr", "sr", "om", "mom", "hoc", "hot")

SCRIPT = """
local key, probes = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]

local names = {'wms', 'nb', 'mc', 'fr', 'sr', 'om', 'mom', 'hoc', 'hot'}
local defaults = {30000, 10, 20, 0.5, -1, 600, 600, 1, 30000}
local stored = redis.call('HMGET', key, 'st', 'gen', 'till', 'nom', 'cur', 'ps', unpack(names))
-- The key's epoch: set when it is created, so that a process tells a state Redis lost (and
-- began again at generation 0) from an old answer overtaken by a newer one.
local epoch = redis.call('HGET', key, 'ep') or ARGV[11]
local cfg, given = {}, {}
for i, name in ipairs(names) do
  local value = ARGV[i + 1]
  if value ~= nil and value ~= '' then
    cfg[name] = tonumber(value)
    given[#given + 1] = name
    given[#given + 1] = value
  elseif stored[i + 6] then
    cfg[name] = tonumber(stored[i + 6])
  else
    cfg[name] = defaults[i]
  end
end
local jitter = tonumber(ARGV[11])
local ttl = tonumber(ARGV[12])

local st = stored[1] or 'closed'
local gen = tonumber(stored[2] or 0)
local till = tonumber(stored[3] or 0)
local nom = tonumber(stored[4] or cfg.om)
local cur = tonumber(stored[5] or cfg.om)
local ps = tonumber(stored[6] or 0)
local nb = cfg.nb
local width = cfg.wms / nb

-- A read (status), and anything that brings no news about a breaker Redis does not have yet
-- (a breaker that has not counted a call: a transport's template, a process just started),
-- writes nothing: it neither creates keys nor keeps them alive.
local news = op == 'switch' or (op == 'sync' and (ARGV[14] == '1' or ARGV[18] ~= ''
  or tonumber(ARGV[15]) + tonumber(ARGV[16]) + tonumber(ARGV[17]) + tonumber(ARGV[20]) > 0))
local readonly = op == 'status' or (not news and redis.call('EXISTS', key) == 0)

local function clear_window()
  if readonly then
    return
  end
  for i = 0, nb - 1 do
    redis.call('HDEL', key, 'h' .. i, 's' .. i, 'f' .. i, 'w' .. i)
  end
end

-- Every move starts a new generation; leases belong to one half-open stretch. (A read
-- that works out a move writes nothing: it only no longer counts the old stretch's leases.)
local probes_gone = false
local function move(to)
  st = to
  gen = gen + 1
  ps = 0
  if readonly then
    probes_gone = true
  else
    redis.call('DEL', probes)
  end
end

local function open_fresh()
  move('open')
  nom = cfg.om
  cur = cfg.om
  till = now + cur
  clear_window()
end

-- A failed or hung probe: open again until the open duration after it was admitted,
-- doubled up to the cap and lengthened by up to 20% so that processes do not probe together.
local function reopen(admitted)
  move('open')
  nom = math.min(cfg.mom, nom * 2)
  cur = nom * (1 + 0.2 * jitter)
  till = math.max(now, admitted + cur)
  clear_window()
end

local function close()
  move('closed')
  nom = cfg.om
  cur = cfg.om
  clear_window()
end

local function leases()
  local oldest, count = nil, 0
  if probes_gone then
    return oldest, count
  end
  for _, admitted in ipairs(redis.call('HVALS', probes)) do
    admitted = tonumber(admitted)
    if admitted >= 0 then -- not a mark of a lease given back before it was granted
      count = count + 1
      if oldest == nil or admitted < oldest then
        oldest = admitted
      end
    end
  end
  return oldest, count
end

-- The moves that the passing of time makes: open -> half-open, and a hung probe.
local function advance()
  if st == 'open' and now >= till then
    move('half_open')
  end
  if st == 'half_open' then
    local oldest = leases()
    if oldest ~= nil and now - oldest >= cfg.hot then
      reopen(oldest)
      if now >= till then
        move('half_open')
      end
    end
  end
end

local function counts()
  local index = math.floor(now / width)
  local calls, failures, slow = 0, 0, 0
  for i = 0, nb - 1 do
    local bucket = redis.call('HMGET', key, 'h' .. i, 's' .. i, 'f' .. i, 'w' .. i)
    if bucket[1] and tonumber(bucket[1]) > index - nb then
      local failed = tonumber(bucket[3] or 0)
      calls = calls + tonumber(bucket[2] or 0) + failed
      failures = failures + failed
      slow = slow + tonumber(bucket[4] or 0)
    end
  end
  return calls, failures, slow
end

local function add(successes, failures, slow)
  if successes + failures + slow == 0 then
    return
  end
  local index = math.floor(now / width)
  local slot = index % nb
  local head = redis.call('HGET', key, 'h' .. slot)
  if not head or tonumber(head) ~= index then
    redis.call('HSET', key, 'h' .. slot, index, 's' .. slot, 0, 'f' .. slot, 0, 'w' .. slot, 0)
  end
  redis.call('HINCRBY', key, 's' .. slot, successes)
  redis.call('HINCRBY', key, 'f' .. slot, failures)
  redis.call('HINCRBY', key, 'w' .. slot, slow)
end

local function ratio_tripped()
  local calls, failures, slow = counts()
  if calls == 0 or calls < cfg.mc then
    return false
  end
  return failures / calls >= cfg.fr or (cfg.sr >= 0 and slow / calls >= cfg.sr)
end

local function switch(mode)
  if mode == 'closed' then
    close()
  elseif mode ~= st then
    move(mode)
  end
end

local granted, retry_after = 0, 0
if op == 'sync' then
  local seen, trip = tonumber(ARGV[13]), ARGV[14] == '1'
  local successes, failures, slow = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
  if ARGV[18] ~= '' then
    -- The ids of the last switches applied: one sent again is not applied twice.
    local recent = redis.call('HGET', key, 'sw') or ''
    if not string.find(' ' .. recent .. ' ', ' ' .. ARGV[19] .. ' ', 1, true) then
      switch(ARGV[18])
      local ids = {ARGV[19]}
      for id in string.gmatch(recent, '%S+') do
        if #ids < 4 then
          ids[#ids + 1] = id
        end
      end
      redis.call('HSET', key, 'sw', table.concat(ids, ' '))
    end
  end
  -- Verdicts come before time moves on: they were reached before now.
  local early = {}
  for i = 0, tonumber(ARGV[20]) - 1 do
    local lease, verdict = ARGV[21 + 2 * i], ARGV[22 + 2 * i]
    local admitted = tonumber(redis.call('HGET', probes, lease) or '-2')
    if admitted == -2 and verdict == 'drop' then
      early[#early + 1] = lease
    elseif admitted >= 0 then
      redis.call('HDEL', probes, lease)
      if verdict == 'failure' then
        reopen(tonumber(admitted))
      elseif verdict == 'success' then
        ps = ps + 1
        if ps >= cfg.hoc then
          close()
        end
      end
    end
  end
  advance()
  if st == 'half_open' then
    for _, lease in ipairs(early) do
      redis.call('HSET', probes, lease, -1) -- given back before it was granted
    end
  end
  if st == 'closed' then
    add(successes, failures, slow)
    -- A process's own trip counts if the breaker is still in the closed stretch it saw (or
    -- in an older one: Redis lost the state since); the merged window trips on failures or
    -- slow calls, never on successes.
    if (trip and (seen < 0 or seen >= gen)) or ((failures > 0 or slow > 0) and ratio_tripped()) then
      open_fresh()
    end
  end
elseif op == 'lease' then
  advance()
  local _, count = leases()
  if st == 'half_open' and redis.call('HGET', probes, ARGV[13]) == '-1' then
    redis.call('HDEL', probes, ARGV[13]) -- given back already: its caller is gone
  elseif st == 'half_open' and count + ps < cfg.hoc and not readonly then
    redis.call('HSET', probes, ARGV[13], now)
    granted = 1
  elseif st == 'closed' or st == 'disabled' then
    granted = 1 -- no probe needed: the process follows the reply and calls as closed
  end
elseif op == 'switch' then
  switch(ARGV[13])
else
  advance()
end

if st == 'open' then
  retry_after = math.max(0, till - now)
elseif st == 'half_open' then
  local oldest = leases()
  if oldest == nil then
    retry_after = 0
  else
    retry_after = math.max(0, math.min(cur, oldest + cfg.hot - now))
  end
elseif st == 'forced_open' then
  retry_after = -1
end

if not readonly then
  redis.call('HSET', key, 'st', st, 'gen', gen, 'till', till, 'nom', nom, 'cur', cur, 'ps', ps,
    'ep', epoch)
  if #given > 0 then
    redis.call('HSET', key, unpack(given))
  end
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', probes, ttl)
end

local calls, failures = counts()
local _, in_flight = leases()
local remaining = 0
if st == 'open' then
  remaining = math.max(0, till - now)
end
if readonly and redis.call('EXISTS', key) == 0 then
  epoch = ''
end
return {st, gen, math.floor(remaining), math.floor(cur), calls, failures, in_flight, granted,
  math.floor(retry_after), epoch, math.floor(nom)}
"""
