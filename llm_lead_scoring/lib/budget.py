"""A company's AI budget during one gateway call or batch: asked before every HTTP attempt.

Plain Python, thread-safe: worker threads ask it; the usage already recorded in the audit log
is read once by the gateway and given here, calls in flight are counted in memory.
"""

import threading

REQUESTS = "requests_per_minute"
TOKENS = "tokens_per_day"
COST = "monthly_cost"
WARNING_RATIO = 0.8


def estimate_tokens(request):
    """Tokens a request may cost: its text at ~4 characters a token, plus the answer cap."""
    payload = request.get("payload") or {}
    chars = len(str(payload.get("system") or "")) + sum(
        len(str(m.get("content") or "")) for m in payload.get("messages") or ()
    )
    return chars // 4 + int(payload.get("max_tokens") or 0)


def cost(request, tokens_in, tokens_out):
    """Cost of a call from the provider's prices per million tokens."""
    return (
        tokens_in * float(request.get("price_input") or 0.0)
        + tokens_out * float(request.get("price_output") or 0.0)
    ) / 1e6


class Budget:
    """Limits (0: none) and usage of one company.

    :param dict limits: requests_per_minute, tokens_per_day, monthly_cost
    :param dict used: the same keys, from the audit log
    :param dict messages: the refusal text for each limit
    """

    def __init__(self, limits, used, messages):
        self.limits = {key: limits.get(key) or 0 for key in (REQUESTS, TOKENS, COST)}
        self.used = {key: used.get(key) or 0 for key in (REQUESTS, TOKENS, COST)}
        self.messages = messages
        self.refused = set()
        self._lock = threading.Lock()

    def acquire(self, request):
        """None when the call may go, else why not (and nothing is counted)."""
        tokens = estimate_tokens(request)
        with self._lock:
            over = {
                # the call at the cap is refused
                REQUESTS: self.used[REQUESTS] >= self.limits[REQUESTS],
                # what this call may spend counts too: calls in flight cannot pass the cap
                TOKENS: self.used[TOKENS] + tokens > self.limits[TOKENS],
                COST: self.used[COST] >= self.limits[COST],
            }
            for key, exceeded in over.items():
                if self.limits[key] and exceeded:
                    self.refused.add(key)
                    return self.messages[key]
            self.used[REQUESTS] += 1
            self.used[TOKENS] += tokens
            return None

    def release(self, request, tokens_in, tokens_out):
        """The call is over: its estimate is replaced by what it really used."""
        with self._lock:
            self.used[TOKENS] += (tokens_in + tokens_out) - estimate_tokens(request)
            self.used[COST] += cost(request, tokens_in, tokens_out)

    def ratios(self):
        """Share of each limit used (limits of 0 are left out)."""
        return {key: self.used[key] / limit for key, limit in self.limits.items() if limit}
