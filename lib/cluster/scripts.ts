/**
 * The Lua scripts behind every change that must be atomic across keys of one
 * slot: a node's heartbeat against its fencing epoch, declaring a node dead,
 * taking a job exactly once, and writing a run's stream only while its owner
 * still holds it. Sent with EVAL (small, and they survive a Redis restart,
 * which EVALSHA's script cache does not).
 *
 * @module
 */

/**
 * Refreshes a node's liveness unless it has been fenced.
 * KEYS: node, epoch. ARGV: the node's epoch, its description, ttl ms.
 * Returns 1, or 0 when the epoch moved on (the node was declared dead).
 * A missing epoch (Redis lost its data) is the node's own again.
 */
export const HEARTBEAT = `
local e = redis.call('GET', KEYS[2])
if not e then redis.call('SET', KEYS[2], ARGV[1]); e = ARGV[1] end
if tonumber(e) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

/**
 * Declares a node dead if its liveness has expired: raises its epoch (its
 * later writes are refused), takes its running set and drops its streams
 * (their consumers with them). KEYS: node, epoch, running, jobs, control.
 * Returns false when it is alive, else {'dead', ids of its runs...}.
 */
export const DECLARE_DEAD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
redis.call('INCR', KEYS[2])
local ids = redis.call('SMEMBERS', KEYS[3])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
table.insert(ids, 1, 'dead')
return ids`;

/**
 * Ends a run as lost unless it has ended: its hash says so, and its stream
 * gets the end and the final entry. KEYS: exec, output. ARGV: exit JSON,
 * stream max length, ttl ms. Returns 1, 0 when it had ended, -1 when unknown.
 */
export const MARK_LOST = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'ended', 'lost', 'exit', ARGV[1], 'state', 'lost')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 't', 'end', 'j', ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 't', 'fin')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`;

/**
 * Appends entries to a run's stream, only for the owner that holds it (the
 * fencing epoch in its hash) and never once the run was declared lost. An
 * `end` entry marks the hash ended (what follows it: hook outcomes, `fin`);
 * a `fin` entry starts both keys' expiry.
 * KEYS: exec, output. ARGV: epoch, max length, ttl ms, count, then per
 * entry its number of field pairs and the pairs (the first is `t`).
 * Returns 1, 0 when refused (fenced or ended), -1 when the hash is gone.
 */
export const PUBLISH = `
local h = redis.call('HMGET', KEYS[1], 'epoch', 'ended')
if not h[1] then return -1 end
if h[2] == 'lost' or h[1] ~= ARGV[1] then return 0 end
local i = 5
for n = 1, tonumber(ARGV[4]) do
  local pairs = tonumber(ARGV[i]); i = i + 1
  local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*'}
  for j = 1, pairs * 2 do args[#args + 1] = ARGV[i]; i = i + 1 end
  redis.call(unpack(args))
  local t = args[8]
  if t == 'end' then
    redis.call('HSET', KEYS[1], 'ended', 'done', 'exit', args[10], 'state', 'ended')
  elseif t == 'fin' then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
  end
end
return 1`;

/**
 * Places a job unless the id is in use: KEYS: exec. ARGV: principal,
 * origin node, target node, ms it may wait to be taken, ttl ms. Its
 * deadline is on Redis's clock, as ACCEPT checks it. Returns 1, or 0 when
 * the id is in use.
 */
export const PLACE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'state', 'placed', 'principal', ARGV[1], 'origin', ARGV[2],
  'target', ARGV[3], 'created_at', tostring(now), 'deadline', tostring(now + tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/**
 * Claims an id for a run of this node (a client's own `execution_id`)
 * unless it is in use anywhere: KEYS: exec. ARGV: ttl ms. Returns 1 or 0.
 */
export const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'starting')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

/**
 * Takes a placed job, once, and only before its deadline (ms since the
 * epoch, on Redis's clock: a job that waited out a frozen Redis or node is
 * never started late): KEYS: exec. ARGV: node, epoch. Returns 1 when this
 * node now owns the run, 0 when it was taken, abandoned or too late.
 */
export const ACCEPT = `
if redis.call('HGET', KEYS[1], 'state') ~= 'placed' then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline') or '0')
if deadline > 0 and now > deadline then
  redis.call('HSET', KEYS[1], 'state', 'abandoned')
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'accepted', 'node', ARGV[1], 'epoch', ARGV[2])
redis.call('PERSIST', KEYS[1])
return 1`;

/**
 * Gives up a job nobody took in time, so it never runs: KEYS: exec.
 * Returns 1 when abandoned, 0 when a node had taken it meanwhile.
 */
export const ABANDON = `
if redis.call('HGET', KEYS[1], 'state') ~= 'placed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'abandoned')
return 1`;
