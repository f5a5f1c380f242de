"""Per-carrier health: binds, rolling error rate, latency, and a circuit breaker.

Theory of operation
-------------------
A carrier is usable when at least one bind that can transmit is up *and* its circuit
lets traffic through. The circuit has three states:

* ``closed`` — traffic flows. It opens when the error rate over the last ``window_s``
  reaches ``error_rate`` with at least ``min_samples`` samples, or at once when the last
  transmitting bind goes down. Errors open it even while every bind is up: a carrier
  that answers each submit_sm with ESME_RSYSERR is bound and useless.
* ``open`` — no traffic. After ``cooldown_s`` (and only with a transmitting bind up) it
  half-opens.
* ``half_open`` — ``probes`` messages may go (:meth:`CarrierHealth.allow` hands out the
  slots). When all of them succeed the circuit closes with a fresh window; a transient
  error or a timeout on a probe opens it again for another cooldown.

What counts: OK is a success; TRANSIENT (an error status that is not permanent) and
TIMEOUT are failures. PERMANENT (the carrier refused *this* message, e.g. a bad
destination) and THROTTLED (back-pressure, handled by the carrier's limiter) say nothing
about whether the carrier works, so they are not samples; throttling is counted apart
for ``status``. A neutral outcome on a probe frees its slot for another probe.

Bind recovery: when the circuit was opened by bind loss alone, the first transmitting
bind back half-opens it at once, without waiting for the cooldown. The cooldown exists
to give an erroring carrier room; a carrier whose bind was cut has just proved it accepts
binds again, and the probes check that it also accepts messages before full traffic
returns. (Reconnect backoff bounds how often a flapping bind can do this.) A circuit
opened by errors keeps its cooldown even if the binds flap meanwhile. The very first
bind of a fresh carrier closes the circuit directly: there is no failure to recover from.

Errors are counted in a ring of time buckets (about one second each, 10–120 buckets per
window): O(1) per outcome, no list of samples, and old buckets age out as time moves.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "CarrierHealth",
    "Circuit",
    "HealthBoard",
    "OnChange",
    "Outcome",
]

#: ``on_change(carrier, old_circuit, new_circuit, reason)``, called once per transition.
OnChange = Callable[[str, str, str, str], None]

#: Weight of the newest response in the latency average.
_LATENCY_ALPHA = 0.2


class Outcome(enum.Enum):
    """How one submit attempt ended, as far as carrier health is concerned."""

    OK = "ok"
    TRANSIENT = "transient"  # error status that is not permanent: a failure
    THROTTLED = "throttled"  # ESME_RTHROTTLED / ESME_RMSGQFUL: not a health sample
    PERMANENT = "permanent"  # refused this message only: not a health sample
    TIMEOUT = "timeout"  # no response in time: a failure


class Circuit(str, enum.Enum):
    """Circuit breaker states; the value is what ``status`` and logs show."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class _Window:
    """Counts of successes, failures and throttles over the last ``span`` seconds."""

    __slots__ = ("width", "size", "stamp", "ok", "err", "thr", "head", "n_ok", "n_err", "n_thr")

    def __init__(self, span: float, now: float) -> None:
        self.size = min(120, max(10, math.ceil(span)))
        self.width = span / self.size
        self.clear(now)

    def clear(self, now: float) -> None:
        self.stamp = [-1] * self.size
        self.ok = [0] * self.size
        self.err = [0] * self.size
        self.thr = [0] * self.size
        self.head = int(now // self.width)
        self.n_ok = self.n_err = self.n_thr = 0

    def advance(self, now: float) -> int:
        """Expire buckets older than the window; returns the current slot."""
        tick = int(now // self.width)
        if tick > self.head:
            # At most one full turn of the ring needs clearing, however long the gap.
            for t in range(max(self.head + 1, tick - self.size + 1), tick + 1):
                slot = t % self.size
                if self.stamp[slot] != t:
                    self.n_ok -= self.ok[slot]
                    self.n_err -= self.err[slot]
                    self.n_thr -= self.thr[slot]
                    self.ok[slot] = self.err[slot] = self.thr[slot] = 0
                    self.stamp[slot] = t
            self.head = tick
        # A clock that steps back is held at the newest bucket seen.
        return self.head % self.size

    def add(self, now: float, ok: int = 0, err: int = 0, thr: int = 0) -> None:
        slot = self.advance(now)
        self.stamp[slot] = self.head
        self.ok[slot] += ok
        self.err[slot] += err
        self.thr[slot] += thr
        self.n_ok += ok
        self.n_err += err
        self.n_thr += thr


def _setting(settings: Any, key: str, kind: type, low: float, high: float | None = None) -> Any:
    value = getattr(settings, key, None)
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ValueError(f"health.{key}: expected {kind.__name__}, got {value!r}")
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"health.{key}: expected a value {bound}, got {value!r}")
    return kind(value)


class CarrierHealth:
    """Health and circuit breaker of one carrier; every input carries ``now``.

    ``settings`` has ``error_rate`` (0 < r <= 1), ``window_s`` (> 0), ``min_samples``
    (int >= 1), ``cooldown_s`` (>= 0) and ``probes`` (int >= 1).

    Raises:
        ValueError: a setting is missing or out of range, naming it (``health.window_s``).
    """

    __slots__ = (
        "name", "on_change", "error_rate", "window_s", "min_samples", "cooldown_s", "probes",
        "_state", "_reason", "_since", "_opened_at", "_by_errors", "_ever_up",
        "_binds", "_tx_up", "_window", "_latency", "_probing", "_probe_ok",
    )

    def __init__(
        self,
        settings: Any,
        *,
        now: float,
        name: str = "",
        on_change: OnChange | None = None,
    ) -> None:
        self.name = name
        self.on_change = on_change
        self.error_rate: float = _setting(settings, "error_rate", float, 0.0, 1.0)
        if self.error_rate == 0.0:
            raise ValueError("health.error_rate: expected a value in (0, 1], got 0")
        self.window_s: float = _setting(settings, "window_s", float, 0.0)
        if self.window_s == 0.0:
            raise ValueError("health.window_s: expected a value > 0, got 0")
        self.min_samples: int = _setting(settings, "min_samples", int, 1)
        self.cooldown_s: float = _setting(settings, "cooldown_s", float, 0.0)
        self.probes: int = _setting(settings, "probes", int, 1)
        # Born open: nothing can be sent before a bind is up.
        self._state = Circuit.OPEN
        self._reason = "no transmitting bind"
        self._since = now
        self._opened_at = now
        self._by_errors = False
        self._ever_up = False
        self._binds: dict[str, bool] = {}
        self._tx_up = 0
        self._window = _Window(self.window_s, now)
        self._latency: float | None = None
        self._probing = 0  # probe slots handed out and not yet answered
        self._probe_ok = 0

    # -- inputs --------------------------------------------------------------------------

    def bind_up(self, bind_id: str, can_transmit: bool, now: float) -> None:
        """A bind of this carrier is bound (receivers count for ``binds_up`` only)."""
        self._binds[bind_id] = can_transmit
        self._tx_up = sum(self._binds.values())
        if not self._tx_up or self._state is not Circuit.OPEN:
            return
        if not self._ever_up:
            self._ever_up = True
            self._window.clear(now)
            self._set(Circuit.CLOSED, "bind up", now)
        elif not self._by_errors:
            self._half_open("bind back", now)
        else:
            self._poll(now)

    def bind_down(self, bind_id: str, now: float) -> None:
        """A bind is gone; losing the last transmitting bind opens the circuit now."""
        self._binds.pop(bind_id, None)
        self._tx_up = sum(self._binds.values())
        if self._tx_up == 0 and self._state is not Circuit.OPEN:
            self._open("no transmitting bind", now, by_errors=False)

    def record(self, outcome: Outcome, latency_s: float | None, now: float) -> None:
        """The result of one submit attempt (one submit_sm); latency None if unknown."""
        if latency_s is not None and outcome is not Outcome.TIMEOUT:
            prev = self._latency
            self._latency = latency_s if prev is None else prev + _LATENCY_ALPHA * (latency_s - prev)
        window = self._window
        if outcome is Outcome.OK:
            window.add(now, ok=1)
        elif outcome is Outcome.TRANSIENT or outcome is Outcome.TIMEOUT:
            window.add(now, err=1)
            if self._state is Circuit.CLOSED:
                self._check_rate(now)
        elif outcome is Outcome.THROTTLED:
            window.add(now, thr=1)
        if self._state is Circuit.HALF_OPEN:
            self._probe_result(outcome, now)

    # -- queries ------------------------------------------------------------------------

    def usable(self, now: float) -> str | None:
        """None when a message may be routed here now, else why not; consumes nothing."""
        state = self._state
        if state is Circuit.CLOSED:
            return None
        if not self._tx_up:
            return "down"
        if state is Circuit.OPEN:
            if now < self._opened_at + self.cooldown_s:
                return "circuit_open"
            self._half_open("cooldown over", now)
        if self._probing + self._probe_ok >= self.probes:
            return "circuit_half_open"
        return None

    def allow(self, now: float) -> bool:
        """Whether to send one message now; in half-open this takes a probe slot.

        Every True must be followed by :meth:`record` for that message (or
        :meth:`release` if it was not sent after all), else the slot stays taken. A
        multipart probe is settled by its first answer; answers that arrive while no
        probe is out belong to messages sent earlier and leave the circuit as it is.
        """
        if self._state is Circuit.CLOSED:
            return True
        if self.usable(now) is not None:
            return False
        self._probing += 1
        return True

    def release(self, now: float) -> None:
        """Give back a probe slot taken by :meth:`allow` for a message not sent."""
        if self._state is Circuit.HALF_OPEN and self._probing:
            self._probing -= 1

    @property
    def circuit(self) -> Circuit:
        """The circuit state as of the last input (:meth:`usable` applies the cooldown)."""
        return self._state

    def snapshot(self, now: float) -> dict[str, Any]:
        """What ``stats``/``status`` show for this carrier."""
        self._poll(now)
        window = self._window
        window.advance(now)
        samples = window.n_ok + window.n_err
        return {
            "healthy": self._state is Circuit.CLOSED and self._tx_up > 0,
            "circuit": self._state.value,
            "reason": self._reason,
            "since": self._since,
            "error_rate": window.n_err / samples if samples else 0.0,
            "latency_ms": None if self._latency is None else round(self._latency * 1000.0, 3),
            "samples": samples,
            "throttled": window.n_thr,
            "binds_up": len(self._binds),
            "tx_binds_up": self._tx_up,
        }

    # -- transitions --------------------------------------------------------------------

    def _check_rate(self, now: float) -> None:
        # Called right after an add(), so the window is already current.
        window = self._window
        samples = window.n_ok + window.n_err
        if samples >= self.min_samples and window.n_err >= self.error_rate * samples:
            rate = window.n_err / samples
            self._open(
                f"error rate {rate:.2f} over {self.window_s:g}s ({samples} samples)",
                now,
                by_errors=True,
            )

    def _probe_result(self, outcome: Outcome, now: float) -> None:
        if not self._probing:
            return  # the answer to a message sent before the circuit half-opened
        self._probing -= 1
        if outcome is Outcome.OK:
            self._probe_ok += 1
            if self._probe_ok >= self.probes:
                self._window.clear(now)
                self._set(Circuit.CLOSED, f"{self.probes} probes succeeded", now)
        elif outcome is Outcome.TRANSIENT or outcome is Outcome.TIMEOUT:
            self._open(f"probe failed ({outcome.value})", now, by_errors=True)

    def _poll(self, now: float) -> None:
        if (
            self._state is Circuit.OPEN
            and self._tx_up
            and now >= self._opened_at + self.cooldown_s
        ):
            self._half_open("cooldown over", now)

    def _half_open(self, reason: str, now: float) -> None:
        self._probing = self._probe_ok = 0
        self._set(Circuit.HALF_OPEN, reason, now)

    def _open(self, reason: str, now: float, *, by_errors: bool) -> None:
        self._opened_at = now
        self._by_errors = by_errors
        self._probing = self._probe_ok = 0
        self._set(Circuit.OPEN, reason, now)

    def _set(self, new: Circuit, reason: str, now: float) -> None:
        old = self._state
        self._state, self._reason, self._since = new, reason, now
        if self.on_change is not None and old is not new:
            self.on_change(self.name, old.value, new.value, reason)


class HealthBoard:
    """Every carrier's :class:`CarrierHealth`, by name."""

    __slots__ = ("carriers",)

    def __init__(self) -> None:
        self.carriers: dict[str, CarrierHealth] = {}

    def add(
        self, name: str, settings: Any, *, now: float, on_change: OnChange | None = None
    ) -> CarrierHealth:
        """Track a carrier (replacing any previous state under that name).

        Raises:
            ValueError: as :class:`CarrierHealth`.
        """
        health = CarrierHealth(settings, now=now, name=name, on_change=on_change)
        self.carriers[name] = health
        return health

    def remove(self, name: str) -> None:
        """Forget a carrier (dropped from the config)."""
        self.carriers.pop(name, None)

    def __getitem__(self, name: str) -> CarrierHealth:
        return self.carriers[name]

    def usable(self, name: str, now: float) -> str | None:
        """As :meth:`CarrierHealth.usable`; "unknown_carrier" for a name not tracked."""
        health = self.carriers.get(name)
        if health is None:
            return "unknown_carrier"
        return health.usable(now)

    def checker(self, now: float) -> Callable[[str], str | None]:
        """A ``usable(name)`` callback for :meth:`RoutingTable.decide` at time ``now``.

        It sees the carriers tracked when it was made: make one per ``now``.
        """
        methods = {name: health.usable for name, health in self.carriers.items()}.get

        def usable(name: str) -> str | None:
            method = methods(name)
            return "unknown_carrier" if method is None else method(now)

        return usable

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        """Every carrier's :meth:`CarrierHealth.snapshot`, by name."""
        return {name: health.snapshot(now) for name, health in self.carriers.items()}
