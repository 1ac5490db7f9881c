"""Callback delivery: a first attempt inline, then a JetStream outbox stream of its own.

A job's result is stored, its callback is attempted once, and only then is the job acked; a
callback that must be retried goes into the outbox first. So a worker that dies at any point
still gets the callback delivered, by itself or another worker: before the ack the job is
redelivered and finds its stored result; after it, the outbox holds the callback. In the outbox
each attempt is one delivery of its message; retrying is handing it back with a delay (``nak``),
so the retry schedule survives restarts. The delay is the receiver's ``Retry-After`` when it sent
one, else tenacity's exponential backoff with full jitter for the attempt JetStream counted.
Every attempt is reported (``attempts``): the inline one to ``send``'s caller, the rest to the
outbox's ``AttemptLog``, so a task's record tells how its callback went.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import propagate, trace
from pydantic import BaseModel, ValidationError
from tenacity import wait_random_exponential

from worker.broker.backoff import delay_after
from worker.broker.dead_letters import DeadLetterWriter
from worker.broker.pull import PullConsumer
from worker.callbacks.attempts import Attempt, AttemptLog
from worker.callbacks.signing import CallbackSigner
from worker.outbound.session import checked_session
from worker.outbound.ssrf import CallbackPolicy, CallbackRefused, refusal_in
from worker.resilience.breaker import AsyncBreaker, BreakerOpen
from worker.resilience.classify import parse_retry_after
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import (
    CALLBACK_ATTEMPTS,
    CALLBACK_LATENCY,
    NATS_MESSAGES,
    labelled,
)
from worker.telemetry.tracing import TRACER_NAME

log = get_logger(__name__)
tracer = trace.get_tracer(TRACER_NAME)

CALLBACK_CONSUMER = "agentos-callbacks"
"""The durable consumer of the outbox stream, shared by the pool."""


class Delivery(BaseModel):
    """One callback waiting in the outbox."""

    task_id: str
    url: str
    body: str
    webhook_id: str
    first_at: datetime
    traceparent: str | None = None
    not_before: datetime | None = None
    """When the first attempt's wait (Retry-After, backoff) is over. JetStream has no delayed
    publish, so the message's first delivery only waits until then (None: a message from an
    older worker, whose first delivery is an attempt)."""


class _Retry(Exception):
    """The receiver failed in a way worth another attempt."""

    def __init__(
        self,
        why: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        counts: bool = True,
    ) -> None:
        super().__init__(why)
        self.status = status
        self.retry_after = retry_after
        self.counts = counts  # False for 429: the receiver is alive, only asking to slow down


class CallbackBreakers:
    """A circuit breaker per receiver (host:port), created on first use."""

    def __init__(self, *, fail_max: int, reset_timeout: float) -> None:
        self._fail_max = fail_max
        self._reset = reset_timeout
        self._by_host: dict[str, AsyncBreaker] = {}

    def get(self, host: str) -> AsyncBreaker:
        """The breaker of ``host``."""
        breaker = self._by_host.get(host)
        if breaker is None:
            breaker = AsyncBreaker(
                name=f"callback:{host}",
                fail_max=self._fail_max,
                reset_timeout=self._reset,
                counts=is_receiver_failure,
            )
            self._by_host[host] = breaker
        return breaker


def is_receiver_failure(exc: BaseException) -> bool:
    """Does ``exc`` count against the receiver's breaker? (5xx, 408, timeouts, refused
    connections do; a 429 or a 4xx answer shows a live receiver and does not.)"""
    return isinstance(exc, _Retry) and exc.counts


class _Rejected(Exception):
    """The receiver answered in a way that will not change (3xx, 4xx but 408/429)."""

    def __init__(self, why: str, *, status: int) -> None:
        super().__init__(why)
        self.status = status


def backoff(attempt: int, *, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter after delivery ``attempt`` (1-based): a random
    wait up to ``min(cap, 2 ** (attempt - 1))`` seconds."""
    return delay_after(wait_random_exponential(multiplier=1, max=cap), attempt)


class CallbackOutbox:
    """Publishes callbacks into the outbox and delivers them from it."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        stream: str,
        subject: str,
        policy: CallbackPolicy,
        signer: CallbackSigner,
        dead_letters: DeadLetterWriter,
        breakers: CallbackBreakers,
        timeout: float,
        retry_for: float,
        max_backoff: float,
        concurrency: int,
        batch: int = 64,
        attempt_log: AttemptLog | None = None,
    ) -> None:
        """``attempt_log`` hears of every attempt made from the outbox stream (the task records)."""
        self._js = js
        self._subject = subject
        self._policy = policy
        self._signer = signer
        self._dead = dead_letters
        self._breakers = breakers
        self._timeout = timeout
        self._retry_for = retry_for
        self._max_backoff = max_backoff
        self._concurrency = concurrency
        self._attempt_log = attempt_log
        self._session: aiohttp.ClientSession | None = None
        self._pull = PullConsumer(
            js,
            stream=stream,
            durable=CALLBACK_CONSUMER,
            handle=self._deliver,
            limit=concurrency,
            batch=batch,
        )

    async def start(self) -> None:
        """Begin delivering."""
        self._session = checked_session(
            self._policy,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            limit=self._concurrency,
            limit_per_host=max(4, self._concurrency // 4),
        )
        await self._pull.start()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop fetching; let deliveries under way finish for up to ``grace`` seconds."""
        await self._pull.stop()
        pending = await self._pull.wait(grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def send(
        self, *, task_id: str, url: str, body: bytes, traceparent: str | None = None
    ) -> Attempt:
        """Deliver a callback: one attempt now; if it must be retried, into the outbox.

        The caller has stored the result and has not acked its job yet, so even this first
        attempt is durable: a worker dying here gets the job redelivered, which finds the stored
        result and sends it again. Retries (for hours) live in the outbox stream. Returns how
        the attempt went (the outbox's ``AttemptLog`` hears of the later ones).
        """
        # Built without validation: every field comes from the worker itself.
        delivery = Delivery.model_construct(
            task_id=task_id,
            url=url,
            body=body.decode(),
            webhook_id=f"msg_{task_id}",
            first_at=datetime.now(UTC),
            traceparent=traceparent,
        )
        attempt = await self._attempt(delivery, 1)
        if attempt.outcome == "delivered":
            return attempt
        if attempt.outcome == "dead_lettered":
            await self._dead.add(
                reason=attempt.reason or "callback_rejected",
                detail=attempt.error or "",
                original=delivery.model_dump_json().encode(),
                subject=self._subject,
                attempts=1,
                task_id=task_id,
            )
            return attempt
        delivery.not_before = attempt.at + timedelta(seconds=attempt.delay or 0.0)
        await self._js.publish(self._subject, delivery.model_dump_json().encode())
        labelled(NATS_MESSAGES, self._subject, "published").inc()
        return attempt

    async def _deliver(self, msg: Msg) -> None:
        """One delivery attempt of a callback from the outbox stream."""
        delivered = msg.metadata.num_delivered or 1
        try:
            delivery = Delivery.model_validate_json(msg.data)
        except ValidationError as exc:
            await self._dead.bury(
                msg, reason="callback_invalid", detail=str(exc), attempts=delivered + 1
            )
            await msg.ack()
            return
        if delivery.not_before is None:
            number = delivered + 1  # the first attempt was made inline
        elif delivered == 1:
            wait = (delivery.not_before - datetime.now(UTC)).total_seconds()
            await msg.nak(delay=max(wait, 0.001))
            return
        else:
            number = delivered  # inline, then a delivery that only waited
        age = (datetime.now(UTC) - delivery.first_at).total_seconds()
        if age > self._retry_for:
            attempt = Attempt(
                task_id=delivery.task_id,
                number=number,
                at=datetime.now(UTC),
                outcome="dead_lettered",
                error=f"not delivered within {self._retry_for:g}s",
                reason="callback_expired",
            )
        else:
            attempt = await self._attempt(delivery, number)
        if attempt.outcome == "dead_lettered":
            await self._dead.bury(
                msg,
                reason=attempt.reason or "callback_rejected",
                detail=attempt.error or "",
                attempts=number,
                task_id=delivery.task_id,
            )
        # Reported before the message is settled, so the next attempt's report comes after it.
        if self._attempt_log is not None:
            await self._attempt_log.attempted(attempt)
        if attempt.outcome == "retry":
            await msg.nak(delay=attempt.delay)
        else:
            await msg.ack()

    async def _attempt(self, delivery: Delivery, number: int) -> Attempt:
        """POST once, and say how it went (delivered, retry after a delay, or dead-lettered)."""
        at = datetime.now(UTC)

        def retry(delay: float, status: int | None, error: str | None) -> Attempt:
            return Attempt(
                task_id=delivery.task_id,
                number=number,
                at=at,
                outcome="retry",
                status_code=status,
                error=error,
                delay=min(delay, self._max_backoff),
            )

        def dead(reason: str, why: str, status: int | None = None) -> Attempt:
            return Attempt(
                task_id=delivery.task_id,
                number=number,
                at=at,
                outcome="dead_lettered",
                status_code=status,
                error=why,
                reason=reason,
            )

        try:
            url = self._policy.check_url(delivery.url)
        except CallbackRefused as exc:
            labelled(CALLBACK_ATTEMPTS, "refused").inc()
            return dead("callback_refused", str(exc))
        # One breaker per receiver: host and port, so two services on one machine are two.
        breaker = self._breakers.get(f"{url.host}:{url.port}")
        try:
            with breaker.calling():
                status = await self._post(delivery, number)
        except BreakerOpen as exc:
            labelled(CALLBACK_ATTEMPTS, "breaker_open").inc()
            return retry(max(exc.retry_after or 0.5, 0.05), None, "not sent: breaker open")
        except _Retry as exc:
            labelled(CALLBACK_ATTEMPTS, "retry").inc()
            delay = exc.retry_after
            if delay is None:
                delay = backoff(number, cap=self._max_backoff)
            log.info(
                "callback will be retried",
                task_id=delivery.task_id,
                attempt=number,
                delay=round(delay, 3),
                why=str(exc),
            )
            return retry(max(delay, 0.05), exc.status, None if exc.status else str(exc))
        except _Rejected as exc:
            labelled(CALLBACK_ATTEMPTS, "rejected").inc()
            return dead("callback_rejected", str(exc), exc.status)
        except CallbackRefused as exc:
            labelled(CALLBACK_ATTEMPTS, "refused").inc()
            return dead("callback_refused", str(exc))
        labelled(CALLBACK_ATTEMPTS, "delivered").inc()
        labelled(NATS_MESSAGES, self._subject, "delivered").inc()
        return Attempt(
            task_id=delivery.task_id, number=number, at=at, outcome="delivered", status_code=status
        )

    async def _post(self, delivery: Delivery, attempt: int) -> int:
        """POST the callback; its 2xx status, or why not (``_Retry``, ``_Rejected``)."""
        if self._session is None:
            raise RuntimeError("outbox not started")
        body = delivery.body.encode()
        headers = self._signer.headers(delivery.webhook_id, body)
        parent = propagate.extract({"traceparent": delivery.traceparent or ""})
        start = time.perf_counter()
        outcome = "error"
        with tracer.start_as_current_span(
            "callback deliver",
            context=parent,
            kind=trace.SpanKind.CLIENT,
            attributes={
                "agentos.task_id": delivery.task_id,
                "agentos.attempt": attempt,
                "http.request.method": "POST",
            },
        ) as span:
            propagate.inject(headers)
            try:
                async with self._session.post(
                    delivery.url, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    await resp.read()
                    status = resp.status
                    span.set_attribute("http.response.status_code", status)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except aiohttp.InvalidURL as exc:
                outcome = "refused"
                raise CallbackRefused(f"callback URL is invalid: {exc}") from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                refused = refusal_in(exc)
                if refused is not None:
                    outcome = "refused"
                    raise refused from None
                outcome = "connection_error"
                raise _Retry(f"{type(exc).__name__}: {exc}") from None
            finally:
                labelled(CALLBACK_LATENCY, outcome if outcome != "error" else "answered").observe(
                    time.perf_counter() - start
                )
        if 200 <= status < 300:
            return status
        if status == 429:
            raise _Retry(
                "429 Too Many Requests", status=status, retry_after=retry_after, counts=False
            )
        if status == 408 or status >= 500:
            raise _Retry(f"receiver answered {status}", status=status, retry_after=retry_after)
        if 300 <= status < 400:
            raise _Rejected(
                f"receiver answered {status}: redirects are not followed", status=status
            )
        raise _Rejected(f"receiver answered {status}", status=status)
