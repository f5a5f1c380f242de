"""The demo's fixed scenario: carriers, routes, limits, the traffic plan, and its expected outcome.

Everything here is decided before the run, from the message count and a seed: which
message goes when, from which number to which, with what text, and what must become of
it. The run (`adapters/demo.py`) only adds the moment the cheapest carrier was killed, which
is what may explain an UNKNOWN. `judge` compares the run with the plan and returns one
line per mismatch. No sockets, no clocks: times are offsets in seconds or passed in.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any, Final

from router.status import DELIVERED, REJECTED, UNKNOWN
from router.tomlwrite import toml_value

# -- carriers and routes -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CarrierSpec:
    """One simulated carrier: its name, the simulator's flags, and the receipt delay."""

    name: str
    flags: tuple[str, ...]
    dlr_delay_ms: int
    #: Carrier keys of the generated config beyond the shared fast-health ones.
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


#: The cheapest carrier; its process is killed under load and started again.
KILLED: Final = "budget"
#: The carrier that refuses a known set of destinations.
PICKY: Final = "strict"
#: Ofcom's range reserved for drama: numbers that exist on no network, so `strict` refuses them.
REJECTED_PREFIX: Final = "447700900"
#: A restarted simulator counts message ids from here, so no id of the first life comes back
#: (a real SMSC never reuses an id within the receipt lifetime either).
RESTART_FIRST_ID: Final = 1_000_001

CARRIERS: Final = (
    # Six submits in flight at most (2 binds x window 3): a small carrier's allowance.
    CarrierSpec(KILLED, (), 100, {"binds": {"transceiver": 2}, "window": 3, "tps": 200}),
    # Answers with hex ids and receipts the same numbers in decimal (SMPP-NOTES: receipts),
    # configured as its operator would from the carrier's spec. Left on "auto", an all-digit
    # receipt id seen before the rule is learned (receipt "11" for response "b" while
    # response "11" is also live) is matched under "same" to the wrong message.
    CarrierSpec("hexnet", ("--id-format", "hex", "--receipt-id-format", "dec"), 200,
                {"tps": 200, "message_id_format": "dec"}),
    CarrierSpec(PICKY, ("--reject-numbers", REJECTED_PREFIX), 50, {"tps": 200}),
)

#: Destination prefix → candidates with their price per segment: `budget` is the cheapest
#: wherever it sells, so its death moves US and German traffic.
ROUTES: Final = (
    ("1", ((KILLED, 0.0025), (PICKY, 0.0040))),
    ("49", ((KILLED, 0.0030), ("hexnet", 0.0045))),
    ("44", ((PICKY, 0.0038), ("hexnet", 0.0050))),
    ("33", (("hexnet", 0.0041), (KILLED, 0.0052))),
)

#: Shared by every carrier: a dead carrier is noticed within a second or two, a revived one
#: rebound within half a second, and receipts that can no longer come end the run as
#: UNKNOWN (no_receipt) within it.
FAST_HEALTH: Final[Mapping[str, Any]] = {
    "window": 32,
    "enquire_link_s": 1,
    "response_timeout_s": 2,
    "bind_timeout_s": 2,
    "reconnect_max_s": 0.5,
    "stale_session_s": 0.5,
    "throttle_failover_s": 3,
    "receipt_timeout_s": 6,
    "health": {"error_rate": 0.5, "window_s": 10, "min_samples": 10, "cooldown_s": 1, "probes": 1},
}

#: The killed carrier first stops answering (SIGSTOP) for this long, then its process is
#: killed: a hung SMSC that its supervisor kills. While it hangs its window fills, so at the
#: kill some submits are written and unanswered (in doubt) and some wait behind the window
#: (never written: they fail over). Shorter than response_timeout_s, so the kill, not a
#: timeout, decides.
HANG_S: Final = 1.0
#: A batch of one-part notices, all for the killed carrier's route, lands as it hangs. The
#: carrier's limiter (tps 200) lets about every other one go there, more than its 6 window
#: slots, so some wait unwritten behind the window when it dies: the failover is certain,
#: not a race with the kill.
BATCH: Final = 20

#: How long after the kill the router may still write to the dead carrier (it sees the
#: closed socket at once; the margin is for a loaded 2-core machine).
KILL_DETECT_S: Final = 2.0
#: How long before the kill a message may have been accepted by the killed carrier with
#: its receipt still pending (receipt delay plus the simulator's receipt queue).
RECEIPT_LAG_S: Final = 3.0

# -- senders and texts ---------------------------------------------------------------

OTP_SENDER: Final = "ACMEBANK"
#: Reminder senders: one number per clinic, each under a tight limit of its own.
REMINDER_SENDERS: Final = tuple(f"4930555010{i}" for i in range(5))
#: The general pool of sending numbers, each under the default per-number limit.
POOL_SIZE: Final = 200

LIMITS: Final[Mapping[str, Any]] = {"default_mps": 5, "burst": 5}
NUMBER_LIMITS: Final = (
    {"match": OTP_SENDER, "mps": 50, "burst": 20},
    {"match": "4930555010", "mps": 2, "burst": 3},
)

_DESTINATIONS: Final = {
    "1": lambda r: f"1202555{r.randrange(100, 200):04d}",
    "49": lambda r: f"491512345{r.randrange(1000):04d}",
    "44": lambda r: f"447911123{r.randrange(1000):03d}",
    "33": lambda r: f"3361234{r.randrange(10000):04d}",
}

_NOTICES: Final = (
    "Your parcel {n} is out for delivery today between 10:00 and 14:00.",
    "Payment of EUR {n}.00 received. Thank you!",
    "Your table for 2 is booked for tonight at 19:30. Ref {n}.",
    "Flight LH{n} boards at gate B12 at 18:05.",
)
_UNICODE: Final = (
    "Ваш заказ {n} отправлен. Спасибо за покупку!",
    "您的包裹 {n} 已发货，预计明天送达。",
    "تم تأكيد موعدك رقم {n} غداً الساعة العاشرة.",
    "Votre code d'accès {n} est prêt 🔑 — à bientôt !",
)
_REMINDER: Final = (
    "Reminder from Riverside Dental: your appointment (ref {n}) is tomorrow at 09:40 with "
    "Dr. Okafor, 2nd floor, 14 Riverside Road. Please arrive 10 minutes early and bring your "
    "insurance card and a list of any medication you take. If you need to cancel or move the "
    "appointment, reply CHANGE or call us on 030 5550 1000 at least 24 hours ahead, otherwise a "
    "missed-appointment fee of EUR 25 may apply. Parking is free behind the building after "
    "08:00. We look forward to seeing you."
)


# -- the plan ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Planned:
    """One request of the plan and what must become of it.

    `expect` is DELIVERED or REJECTED for a message the router must accept, or "refused"
    for an invalid request, whose reply must carry `expect_error`.
    """

    index: int
    kind: str
    at: float
    request: Mapping[str, Any]
    expect: str
    expect_error: str | None = None

    @property
    def client_ref(self) -> str:
        return f"demo-{self.index:06d}"


#: Invalid requests, each with the error it must be refused with (DESIGN, "Error codes").
INVALID: Final = (
    ({"from": "4930123456", "to": "0049-151-ABC", "text": "hi"}, "invalid_number"),
    ({"from": "4930123456", "to": "8613800138000", "text": "no carrier sells China here"}, "no_route"),
    ({"from": "4930123456", "to": "4915123456789", "text": "x" * 1700}, "too_long"),
    ({"from": "4930123456", "to": "4915123456789", "text": "urgent", "priority": 5}, "invalid_request"),
    ({"from": "ACMEBANKLTD12", "to": "4915123456789", "text": "sender too long"}, "invalid_number"),
)

#: Share of the valid messages per kind; the rest are plain one-part notices.
MIX: Final = (("otp", 0.30), ("reminder", 0.12), ("unicode", 0.15), ("rejected", 0.05))


class Scenario:
    """The plan for `messages` requests sent at `rate` per second, and the kill schedule.

    Raises ValueError naming `messages` or `rate` when out of range.
    """

    #: Fractions of the traffic at which the cheapest carrier hangs and comes back.
    HANG_AT: Final = 0.35
    RESTART_AT: Final = 0.65
    MIN_MESSAGES: Final = 50

    def __init__(self, messages: int, rate: float, seed: int = 34) -> None:
        if not isinstance(messages, int) or messages < self.MIN_MESSAGES:
            raise ValueError(f"messages: must be an int >= {self.MIN_MESSAGES}, got {messages!r}")
        if not rate > 0:
            raise ValueError(f"rate: must be > 0 messages per second, got {rate!r}")
        self.messages = messages
        self.rate = rate
        self.duration = messages / rate
        self.batch_index = round(messages * self.HANG_AT)
        batch_at = self.batch_index / rate
        #: Offsets (s from the first request): the hang, the kill, the restart.
        self.hang_offset = max(0.0, batch_at - 0.1)
        self.kill_offset = self.hang_offset + HANG_S
        self.restart_offset = max(self.duration * self.RESTART_AT, self.kill_offset + 1.5)
        self.plan = _build_plan(messages, rate, self.batch_index, random.Random(seed))

    @property
    def valid(self) -> list[Planned]:
        return [p for p in self.plan if p.expect != "refused"]

    def expected_counts(self) -> dict[str, int]:
        """How many requests must end in each way, before any kill is accounted for."""
        counts: dict[str, int] = {}
        for p in self.plan:
            key = p.expect_error if p.expect == "refused" else p.expect
            assert key is not None
            counts[key] = counts.get(key, 0) + 1
        return counts


def _build_plan(messages: int, rate: float, batch_index: int, rng: random.Random) -> list[Planned]:
    n_invalid = len(INVALID)
    kinds: list[str | int] = list(_kinds(messages - n_invalid - BATCH, rng))
    # The invalid requests (by their index in INVALID) spread over the run, not bunched.
    for i in reversed(range(n_invalid)):
        kinds.insert(round((i + 0.5) * len(kinds) / n_invalid), i)
    kinds[batch_index:batch_index] = ["batch"] * BATCH
    plan: list[Planned] = []
    for index, kind in enumerate(kinds):
        # The batch lands at once; the requests after it keep their own times.
        at = (batch_index if kind == "batch" else index) / rate
        if isinstance(kind, int):
            request, error = INVALID[kind]
            plan.append(Planned(index, "invalid", at, dict(request), "refused", error))
        else:
            plan.append(Planned(index, kind, at, _request(kind, index, rng), *_expect(kind)))
    return plan


def _kinds(n: int, rng: random.Random) -> list[str]:
    kinds: list[str] = []
    for kind, share in MIX:
        kinds += [kind] * max(1, round(n * share))
    kinds += ["notice"] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds[:n]


def _expect(kind: str) -> tuple[str, str | None]:
    if kind == "rejected":
        return REJECTED, "ESME_RINVDSTADR"
    return DELIVERED, None


def _request(kind: str, index: int, rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(1000, 9999)
    if kind == "rejected":
        return {"from": _pool(rng), "to": f"{REJECTED_PREFIX}{rng.randrange(1000):03d}",
                "text": rng.choice(_NOTICES).format(n=n)}
    if kind == "batch":  # a shipping batch for German customers: the killed carrier's route
        return {"from": _pool(rng), "to": _DESTINATIONS["49"](rng), "text": _NOTICES[0].format(n=n),
                "tags": {"campaign": "shipping"}}
    to = _DESTINATIONS[rng.choice(tuple(_DESTINATIONS))](rng)
    if kind == "otp":
        return {"from": OTP_SENDER, "to": to, "priority": 1, "validity_s": 300,
                "text": f"{n:06d} is your ACME Bank code. It expires in 5 minutes. Never share it.",
                "tags": {"campaign": "otp"}}
    if kind == "reminder":
        return {"from": REMINDER_SENDERS[index % len(REMINDER_SENDERS)], "to": to,
                "text": _REMINDER.format(n=n), "tags": {"campaign": "reminders"}}
    if kind == "unicode":
        return {"from": _pool(rng), "to": to, "text": rng.choice(_UNICODE).format(n=n)}
    return {"from": _pool(rng), "to": to, "text": rng.choice(_NOTICES).format(n=n)}


def _pool(rng: random.Random) -> str:
    return f"4930777{rng.randrange(POOL_SIZE):04d}"


# -- the generated config ------------------------------------------------------------


def render_config(*, socket_url: str, metrics: str, ports: Mapping[str, int]) -> str:
    """router.toml for the demo: state next to the file, the scenario's carriers and routes.

    Raises KeyError naming a carrier of CARRIERS missing from `ports`.
    """
    lines = ["[router]", f"socket = {toml_value(socket_url)}", 'state_dir = "."', f"metrics = {toml_value(metrics)}", ""]
    for spec in CARRIERS:
        entry: dict[str, Any] = {"name": spec.name, "host": "127.0.0.1", "port": ports[spec.name],
                                 "system_id": spec.name, "password": "demo"}
        entry.update(FAST_HEALTH)
        entry.update(spec.config)
        lines += ["[[carriers]]", *(f"{k} = {toml_value(v)}" for k, v in entry.items()), ""]
    for prefix, carriers in ROUTES:
        cands = [{"name": name, "cost": cost} for name, cost in carriers]
        lines += ["[[routes]]", f"prefix = {toml_value(prefix)}", f"carriers = {toml_value(cands)}", ""]
    lines += ["[limits]", *(f"{k} = {toml_value(v)}" for k, v in LIMITS.items()), ""]
    for number in NUMBER_LIMITS:
        lines += ["[[limits.numbers]]", *(f"{k} = {toml_value(v)}" for k, v in number.items()), ""]
    return "\n".join(lines)


# -- judging the run -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KillWindow:
    """When the killed carrier could have taken a message and then lost its fate (epoch s)."""

    carrier: str
    hung_at: float
    killed_at: float

    def explains(self, mdr: Mapping[str, Any], parse_time: Any) -> bool:
        """Whether the kill explains this UNKNOWN: the message was last on the killed carrier
        and tried there from shortly before it hung until its death was noticed."""
        if mdr.get("carrier") != self.carrier or mdr.get("error") not in ("in_doubt", "no_receipt"):
            return False
        low, high = self.hung_at - RECEIPT_LAG_S, self.killed_at + KILL_DETECT_S
        for attempt in mdr.get("attempts") or ():
            at = attempt.get("at") if attempt.get("carrier") == self.carrier else None
            if at and low <= parse_time(at) <= high:
                return True
        return False


def judge(
    plan: Sequence[Planned],
    replies: Sequence[Mapping[str, Any] | None],
    mdrs: Mapping[str, Mapping[str, Any]],
    kill: KillWindow | None,
    failovers: float,
    parse_time: Any,
) -> tuple[list[str], dict[str, int]]:
    """Compare the run with the plan: (one line per mismatch, outcome counts).

    `replies[i]` is the socket's reply to `plan[i]` (None if none came); `mdrs` maps router
    id → final MDR. The counts key an outcome as DELIVERED, REJECTED, an error code, or
    `UNKNOWN/in_doubt` and `UNKNOWN/no_receipt` for those the kill explains.
    """
    problems: list[str] = []
    counts: dict[str, int] = {}
    for p, reply in zip(plan, replies, strict=True):
        outcome, problem = _judge_one(p, reply, mdrs, kill, parse_time)
        counts[outcome] = counts.get(outcome, 0) + 1
        if problem:
            problems.append(f"#{p.index} {p.kind} to {p.request.get('to')}: {problem}")
    if failovers < 1:
        problems.append("failover_total: expected >= 1 after the kill, got 0")
    return problems, counts


def _judge_one(
    p: Planned, reply: Mapping[str, Any] | None, mdrs: Mapping[str, Mapping[str, Any]],
    kill: KillWindow | None, parse_time: Any,
) -> tuple[str, str | None]:
    if reply is None:
        return "no reply", "no reply from the router"
    if p.expect == "refused":
        if reply.get("ok") is False and reply.get("error") == p.expect_error:
            return str(p.expect_error), None
        got = "accepted" if reply.get("ok") else reply.get("error")
        return f"refused {got}", f"expected refusal {p.expect_error}, got {got}"
    if not reply.get("ok"):
        return f"refused {reply.get('error')}", f"expected acceptance, refused {reply.get('error')}: {reply.get('message')}"
    mdr = mdrs.get(str(reply.get("id")))
    if mdr is None:
        return "missing", f"no MDR for router id {reply.get('id')}"
    status, error = mdr.get("status"), mdr.get("error")
    if status == p.expect and (p.expect_error is None or error == p.expect_error):
        return str(status), None
    if status == UNKNOWN and p.expect == DELIVERED and kill is not None and kill.explains(mdr, parse_time):
        return f"UNKNOWN/{error}", None
    return f"{status}/{error}", f"expected {p.expect}{'/' + p.expect_error if p.expect_error else ''}, got {status} ({error}) on {mdr.get('carrier')}"
