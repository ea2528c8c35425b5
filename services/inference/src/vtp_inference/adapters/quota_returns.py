"""Giving a batch's unprocessed images back to its quota windows in Redis, once per batch.

One Lua step: a marker keyed by the batch id is set first (SET NX), and only the call that set it
gives anything back, so a retry after a lost database write, or two replicas at once, return the
images once. A window whose state expired (its period ended on Redis' clock) gets nothing and
none goes below zero.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

MARKER = "vtp:inference:rl:batch-returned:{}"
MARKER_KEPT_MS = 35 * 86_400_000  # past the longest window (a month): later, no window is current any more

# KEYS: the batch's marker, then the windows' states. ARGV: the images, the marker's lifetime in ms.
# Returns 1 when the images were given back now, 0 when this batch had given them back already.
SCRIPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[2])) then return 0 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local left = redis.call('DECRBY', KEYS[i], tonumber(ARGV[1]))
    if left < 0 then redis.call('INCRBY', KEYS[i], -left) end
  end
end
return 1
"""


class RedisQuotaReturns:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(SCRIPT)

    async def give_back(self, batch_id: uuid.UUID, windows: Sequence[str], images: int) -> bool:
        """Give `images` back to each of `windows`; False when the batch had done so already."""
        keys = [MARKER.format(batch_id), *windows]
        return bool(await self._script(keys=keys, args=[images, MARKER_KEPT_MS]))
