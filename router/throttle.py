"""Throughput limits: one GCRA serving every limiter.

Theory of operation
-------------------
The generic cell rate algorithm keeps, per key, one number: the theoretical
arrival time (TAT), the moment the key's bucket would be empty again if it sent
nothing more.  With ``T = 1 / rate`` and ``tau = (burst - 1) * T``:

* the key *conforms* at ``now`` when ``TAT - tau <= now`` (a TAT in the past
  counts as ``now``), so ``conforms_at`` is simply ``max(now, TAT - tau)``;
* admitting a message of ``n`` segments sets ``TAT = max(TAT, now) + n * T``.

This is "debt" semantics: the parts of a multipart message go together (a
carrier must see them on one bind, in order) and the key then pays for all of
them before it conforms again.  A 3-part message from a 1 segment/s number with
burst 1 goes at once and the number's next message 3 s later.  Over any window
``w`` a key therefore sends at most ``rate * w + burst - 1 + n_last`` segments,
where ``n_last`` is the size of the window's last message; with single-part
messages that is the familiar ``rate * w + burst``.

A key whose TAT is not in the future has a full bucket, which is exactly the
state of a key never seen: it keeps no entry at all.  Entries are deleted
lazily when read and in bulk by :meth:`Gcra.prune`, so a limiter holds state
only for keys that sent recently (one ``str -> float`` dict entry each, no
per-key object).

The code is pure: time comes in as ``now`` (seconds, any monotonic origin).
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["CarrierLimiter", "Gcra", "LimitPolicy"]

#: Conformance tolerance in seconds.  TATs are sums of ``n * T`` in floating
#: point; without it a burst of 100 at 100/s could admit only 99 at once.
_EPS = 1e-9

#: A per-key policy: key -> (rate in segments per second, burst in segments).
LimitPolicy = Callable[[str], "tuple[float, int]"]


def _check_limits(rate: float, burst: int, what: str = "") -> tuple[float, float]:
    """Validate ``rate``/``burst`` and return ``(T, tau)``.

    Raises:
        ValueError: naming ``rate`` or ``burst`` when not finite and positive.
    """
    suffix = f" for {what!r}" if what else ""
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        raise ValueError(f"rate{suffix} must be a number, got {rate!r}")
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate{suffix} must be a finite number > 0, got {rate!r}")
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise ValueError(f"burst{suffix} must be an integer >= 1, got {burst!r}")
    interval = 1.0 / rate
    return interval, (burst - 1) * interval


def _check_segments(n: int) -> None:
    """Raises: ValueError naming ``n`` unless it is an integer >= 1."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n (segments) must be an integer >= 1, got {n!r}")


class Gcra:
    """A keyed GCRA limiter with debt semantics (see the module docstring).

    ``Gcra(rate, burst)`` applies one limit to every key;
    :meth:`Gcra.per_key` takes each key's limit from a policy function.
    """

    __slots__ = ("_cache_size", "_checked", "_interval", "_params", "_policy", "_tat", "_tau")

    def __init__(self, rate: float, burst: int = 1) -> None:
        """Raises: ValueError naming ``rate`` or ``burst`` when invalid."""
        self._interval, self._tau = _check_limits(rate, burst)
        self._tat: dict[str, float] = {}
        self._policy: LimitPolicy | None = None
        self._params: dict[str, tuple[float, float]] = {}
        self._checked: dict[tuple[float, int], tuple[float, float]] = {}
        self._cache_size = 0

    @classmethod
    def per_key(cls, policy: LimitPolicy, cache_size: int = 4096) -> Gcra:
        """A limiter whose ``(rate, burst)`` per key comes from ``policy(key)``.

        Policy answers are cached for at most ``cache_size`` keys or as many
        keys as hold live state, whichever is more (the cache is simply
        cleared when full, which keeps it cheap and bounded): with 100,000
        active numbers, asking the policy on every message would cost more
        than the rest of the scheduling.  A bad answer raises ValueError from
        the call that needed it, naming the key.
        """
        limiter = cls(1.0, 1)
        limiter._policy = policy
        limiter._cache_size = max(1, cache_size)
        return limiter

    # -- configuration --------------------------------------------------

    def set_rate(self, rate: float, burst: int = 1) -> None:
        """Change the single limit (config reload); live TATs are kept.

        Raises: ValueError naming ``rate`` or ``burst`` when invalid.
        """
        self._interval, self._tau = _check_limits(rate, burst)
        self._policy = None
        self._params.clear()
        self._checked.clear()

    def set_policy(self, policy: LimitPolicy) -> None:
        """Switch to (or replace) a per-key policy; live TATs are kept."""
        self._policy = policy
        self._cache_size = self._cache_size or 4096
        self._params.clear()
        self._checked.clear()

    def limits_for(self, key: str) -> tuple[float, float]:
        """``(T, tau)`` for ``key``: seconds per segment and burst tolerance.

        Raises: ValueError naming the key when the policy answers nonsense.
        """
        if self._policy is None:
            return self._interval, self._tau
        params = self._params.get(key)
        if params is None:
            params = self._ask_policy(key)
        return params

    def _ask_policy(self, key: str) -> tuple[float, float]:
        """A cache miss: ask the policy; validate each distinct answer once."""
        answer = self._policy(key)  # type: ignore[misc]
        try:
            rate, burst = answer
        except (TypeError, ValueError):
            raise ValueError(f"limit policy for {key!r} must return (rate, burst), "
                             f"got {answer!r}") from None
        answer = (rate, burst)                 # hashable even if a list came back
        params = self._checked.get(answer)
        if params is None:
            params = _check_limits(rate, burst, key)
            if len(self._checked) < 256:   # a config has a handful of limit classes
                self._checked[answer] = params
        cached = len(self._params)
        if cached >= self._cache_size and cached > len(self._tat):
            self._params.clear()
        self._params[key] = params
        return params

    # -- the algorithm --------------------------------------------------

    def conforms_at(self, key: str, now: float) -> float:
        """The earliest time >= ``now`` at which ``key`` may send.

        Drops the key's state when its bucket has refilled.
        """
        tat = self._tat.get(key)
        if tat is None:
            return now
        if tat <= now:
            del self._tat[key]
            return now
        allowed = tat - self.limits_for(key)[1]
        return allowed if allowed > now + _EPS else now

    def acquire(self, key: str, n: int, now: float) -> float:
        """Charge ``n`` segments to ``key`` at ``now``, conforming or not.

        The caller has checked :meth:`conforms_at`; charging a key that does
        not conform just deepens its debt.  Returns when the key conforms
        next (as :meth:`conforms_at` would), saving the scheduler a lookup.

        Raises: ValueError naming ``n`` unless it is an integer >= 1.
        """
        if type(n) is not int or n < 1:
            _check_segments(n)
        interval, tau = self.limits_for(key)
        tat = self._tat.get(key, now)
        self._tat[key] = tat = (tat if tat > now else now) + n * interval
        allowed = tat - tau
        return allowed if allowed > now + _EPS else now

    def try_acquire(self, key: str, n: int, now: float) -> bool:
        """Charge ``n`` segments and return True if ``key`` conforms at ``now``.

        Raises: ValueError naming ``n`` unless it is an integer >= 1.
        """
        if type(n) is not int or n < 1:
            _check_segments(n)
        if self.conforms_at(key, now) > now:
            return False
        self.acquire(key, n, now)
        return True

    def tat(self, key: str) -> float | None:
        """The key's theoretical arrival time, or None when it holds no state."""
        return self._tat.get(key)

    def prune(self, now: float) -> int:
        """Forget every key whose bucket has refilled by ``now``; returns how many.

        O(keys): call it from a periodic housekeeping tick, not per message.
        """
        tats = self._tat
        stale = [key for key, tat in tats.items() if tat <= now]
        for key in stale:
            del tats[key]
        if len(self._params) > max(self._cache_size, len(tats)):
            self._params.clear()             # the answers for the numbers gone idle
        return len(stale)

    def __len__(self) -> int:
        """Keys holding live state (some may have refilled since: see prune)."""
        return len(self._tat)


class CarrierLimiter:
    """A carrier's submit limit (segments per second) with AIMD on throttling.

    Owned by the carrier's bind pool: it asks :meth:`available_at`, charges
    with :meth:`acquire` when it submits, and reports responses with
    :meth:`on_throttled` (ESME_RTHROTTLED / ESME_RMSGQFUL) and
    :meth:`on_success`.  A throttled carrier's rate is multiplied by
    ``decrease`` (at most once per ``interval``: one burst of traffic comes
    back as a whole window of throttled responses, which is one signal, not
    sixty-four) down to ``floor``; every ``interval`` of successes adds
    ``step`` back, up to the configured tps.
    """

    __slots__ = ("_burst", "_explicit_floor", "_explicit_step", "_gcra", "_last_change",
                 "_last_decrease", "configured_tps", "decrease", "floor", "interval",
                 "step", "throttled_since", "tps")

    def __init__(
        self,
        tps: float,
        burst: int = 1,
        *,
        decrease: float = 0.5,
        interval: float = 1.0,
        floor: float | None = None,
        step: float | None = None,
    ) -> None:
        """``floor`` defaults to max(1, 10 % of tps) and ``step`` to max(1, tps / 10).

        Raises: ValueError naming the bad argument.
        """
        _check_limits(tps, burst)
        if not 0.0 < decrease < 1.0:
            raise ValueError(f"decrease must be in (0, 1), got {decrease!r}")
        if not interval > 0.0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self._gcra = Gcra(tps, burst)
        self._burst = burst
        self.decrease = decrease
        self.interval = interval
        self.tps = float(tps)
        self.configured_tps = float(tps)
        self._explicit_floor = floor
        self._explicit_step = step
        self.floor, self.step = self._derived()
        #: When the current throttled spell began; None when not throttled.
        self.throttled_since: float | None = None
        self._last_change = -math.inf
        self._last_decrease = -math.inf

    def _derived(self) -> tuple[float, float]:
        """``(floor, step)`` for the configured tps. Raises: ValueError naming them."""
        tps, floor, step = self.configured_tps, self._explicit_floor, self._explicit_step
        lo = max(1.0, 0.1 * tps) if floor is None else float(floor)
        if not 0.0 < lo:
            raise ValueError(f"floor must be > 0, got {floor!r}")
        up = max(1.0, tps / 10.0) if step is None else float(step)
        if not 0.0 < up:
            raise ValueError(f"step must be > 0, got {step!r}")
        return min(lo, tps), up

    def available_at(self, n: int, now: float) -> float:
        """Earliest time >= ``now`` the carrier may take a message of ``n`` segments.

        Under debt semantics all parts go once the limiter conforms, so ``n``
        only has to be valid. Raises: ValueError naming ``n``.
        """
        _check_segments(n)
        return self._gcra.conforms_at("", now)

    def acquire(self, n: int, now: float) -> float:
        """Charge ``n`` segments sent at ``now``; returns when the carrier conforms next.

        Raises: ValueError naming ``n``.
        """
        return self._gcra.acquire("", n, now)

    def on_throttled(self, now: float) -> None:
        """The carrier answered ESME_RTHROTTLED / ESME_RMSGQFUL: slow down."""
        if self.throttled_since is None:
            self.throttled_since = now
        if now - self._last_decrease < self.interval:
            return
        self._last_decrease = now
        self._set_current(max(self.floor, self.tps * self.decrease), now)

    def on_success(self, now: float) -> None:
        """A submit was accepted: the throttled spell ends; creep back up."""
        self.throttled_since = None
        if self.tps >= self.configured_tps or now - self._last_change < self.interval:
            return
        self._set_current(min(self.configured_tps, self.tps + self.step), now)

    def throttled_for(self, now: float) -> float:
        """Seconds the carrier has been throttling us without a success since (0 if not)."""
        since = self.throttled_since
        return 0.0 if since is None else max(0.0, now - since)

    def set_tps(self, tps: float, burst: int | None = None) -> None:
        """Config reload: a new configured tps (and burst); a lowered rate stays lowered.

        Raises: ValueError naming ``rate`` or ``burst``.
        """
        burst = self._burst if burst is None else burst
        _check_limits(tps, burst)
        reduced = self.tps < self.configured_tps or self.throttled_since is not None
        self.configured_tps = float(tps)
        self._burst = burst
        self.floor, self.step = self._derived()
        current = min(self.tps, self.configured_tps) if reduced else self.configured_tps
        self.tps = max(current, self.floor)
        self._gcra.set_rate(self.tps, self._burst)

    def _set_current(self, tps: float, now: float) -> None:
        self.tps = tps
        self._last_change = now
        self._gcra.set_rate(tps, self._burst)
