"""`/state` under load: `aitrapp paper --speed 1x` (the synthetic day at
session speed, API on loopback) and GET /state at a steady 200 requests/s
from an open-loop client (each request leaves at its scheduled time, so a
slow answer cannot hide the ones queued behind it). Target: p99 <= 20 ms.

``make bench`` runs 20 s at 200 requests/s and prints p50/p99; under plain
``pytest`` it runs 2 s at 50 requests/s as a test. Loopback only; it stops by
itself (bounded count and time), and the session is stopped with SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aitrapp.db.embedded import free_port


async def _load(url: str, rate: float, seconds: float) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:

        async def one() -> None:
            t0 = time.perf_counter()
            r = await client.get("/state")
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses.append(r.status_code)

        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, statuses


def _wait_ready(url: str, proc: subprocess.Popen[bytes], limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aitrapp paper exited with {proc.returncode}")
        try:
            state = httpx.get(f"{url}/state", timeout=2.0).json()
            if (state.get("counters") or {}).get("ticks", 0) > 0:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError("the session did not start ticking")


def test_bench_state_under_load(benchmark: Any, tmp_path: Path) -> None:
    rate, seconds = (50.0, 2.0) if benchmark.disabled else (200.0, 20.0)
    port = free_port()
    env = {
        **os.environ,
        "AITRAPP_DATA_DIR": str(tmp_path / "var"),
        "AITRAPP_LOGS_DIR": str(tmp_path / "logs"),
        "AITRAPP_API_PORT": str(port),
    }
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-m", "aitrapp", "paper", "--speed", "1x", "--date", "2026-11-25"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        _wait_ready(url, proc)

        def once() -> None:
            result["lat"], result["status"] = asyncio.run(_load(url, rate, seconds))

        benchmark.pedantic(once, rounds=1, iterations=1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert set(result["status"]) == {200}
    if not benchmark.disabled:
        p50, p99 = np.percentile(np.array(result["lat"]), [50, 99])
        print(f"\n/state at {rate:.0f} req/s for {seconds:.0f} s: p50 {p50:.2f} p99 {p99:.2f} ms")
