"""Rate limits in Redis, shared by every replica: one Lua script checks and takes every budget atomically.

Per request one round trip: the key's end (revoked, or past its rotation overlap) is checked, then
each policy (token bucket, concurrent slots, image quota) is evaluated on Redis' own clock, and
only if all admit is any budget taken, so a refused request costs nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from vtp_inference.domain.limits import BUCKET, CONCURRENT, QUOTA, Policy, PolicyState, Verdict

END_KEY = "vtp:inference:key-end:{}"  # epoch ms after which a key is refused (0: revoked)
END_KEPT_MS = 86_400_000  # past the local key cache's TTL, the database's own record suffices

# KEYS: the key's end, then each policy's state. ARGV: 1 when a key is checked (else 0), the
# policy count, then per policy: kind (b, c, q), limit, window in ms, extra (c: the slot's member;
# q: the cost in images). Returns status (1 ok, 0 refused, -1 key ended), retry-after ms, then
# remaining and reset ms per policy.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then
  local ends = redis.call('GET', KEYS[1])
  if ends and tonumber(ends) <= now then return {-1, 0} end
end
local n = tonumber(ARGV[2])
local ok, wait, state = 1, 0, {}
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local kind, limit, window, extra = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4]
  local key = KEYS[i + 1]
  if kind == 'b' then
    local s = redis.call('HMGET', key, 't', 'ts')
    local rate = limit / window
    local tokens = tonumber(s[1]) or limit
    tokens = math.min(limit, tokens + math.max(0, now - (tonumber(s[2]) or now)) * rate)
    state[i] = tokens
    if tokens < 1 then ok = 0; wait = math.max(wait, (1 - tokens) / rate) end
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local used = redis.call('ZCARD', key)
    state[i] = used
    if used >= limit then ok = 0; wait = math.max(wait, 1000) end
  else
    local used = tonumber(redis.call('GET', key) or '0')
    state[i] = used
    if used + tonumber(extra) > limit then ok = 0; wait = math.max(wait, window) end
  end
end
local out = {ok, math.ceil(wait)}
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local kind, limit, window, extra = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4]
  local key = KEYS[i + 1]
  if kind == 'b' then
    local tokens = state[i]
    if ok == 1 then
      tokens = tokens - 1
      redis.call('HSET', key, 't', tostring(tokens), 'ts', now)
      redis.call('PEXPIRE', key, window * 2)
    end
    out[#out + 1] = math.floor(tokens)
    out[#out + 1] = math.ceil((limit - tokens) * window / limit)
  elseif kind == 'c' then
    local used = state[i]
    if ok == 1 then
      redis.call('ZADD', key, now, extra)
      redis.call('PEXPIRE', key, window)
      used = used + 1
    end
    out[#out + 1] = limit - used
    out[#out + 1] = 1000
  else
    local used = state[i]
    if ok == 1 then
      used = redis.call('INCRBY', key, tonumber(extra))
      redis.call('PEXPIRE', key, window)
    end
    out[#out + 1] = limit - used
    out[#out + 1] = window
  end
end
return out
"""

# KEYS: quota states; ARGV: the images to give back to each. A quota whose period ended (its key
# expired) gets nothing back, and none goes below zero.
REFUND = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local left = redis.call('DECRBY', KEYS[i], tonumber(ARGV[i]))
    if left < 0 then redis.call('INCRBY', KEYS[i], -left) end
  end
end
return 0
"""


class RedisRateLimiter:
    """The shared limiter; `member` names a request's concurrent slot, freed by `release`."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(SCRIPT)
        self._refund = redis.register_script(REFUND)

    async def acquire(self, found: Sequence[Policy], key_id: uuid.UUID | None, images: int, member: str) -> Verdict:
        args: list[str | int] = [1 if key_id else 0, len(found)]
        for p in found:
            kind = "b" if p.kind == BUCKET else "c" if p.kind == CONCURRENT else "q"
            extra = member if p.kind == CONCURRENT else str(p.cost(images))
            args += [kind, p.limit, max(1, int(p.window * 1000)), extra]
        raw = await self._script(keys=[END_KEY.format(key_id or "-"), *(p.store_key for p in found)], args=args)
        status, wait = int(raw[0]), int(raw[1])
        if status == -1:
            return Verdict(False, ended=True)
        states = tuple(PolicyState(p, int(raw[2 + 2 * i]), int(raw[3 + 2 * i]) / 1000) for i, p in enumerate(found))
        return Verdict(status == 1, states, wait / 1000)

    async def release(self, found: Sequence[Policy], member: str) -> None:
        """Free a request's concurrent slots (a replica that dies frees them when their lease ends)."""
        slots = [p.store_key for p in found if p.kind == CONCURRENT]
        if slots:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in slots:
                    pipe.zrem(key, member)
                await pipe.execute()

    async def refund(self, found: Sequence[Policy], images: int) -> None:
        """Give `images` back to the quotas among `found` (a request admitted, then not carried out)."""
        quotas = [p for p in found if p.kind == QUOTA]
        if quotas:
            await self._refund(keys=[p.store_key for p in quotas], args=[p.cost(images) for p in quotas])

    async def end_key(self, key_id: uuid.UUID, at_epoch_ms: int) -> None:
        """Refuse a key from `at_epoch_ms` on (0: now), on every replica at its next request."""
        await self._redis.set(
            END_KEY.format(key_id), str(at_epoch_ms), px=END_KEPT_MS + max(0, at_epoch_ms - _now_ms())
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
