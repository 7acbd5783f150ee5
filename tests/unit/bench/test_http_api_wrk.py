"""bench/http_api.py reads wrk's own report: requests, rate, median and p99 in any unit, non-2xx answers."""

from __future__ import annotations

import pytest

from bench.http_api import parse_wrk

REPORT = """Running 3s test @ http://127.0.0.1:40000/v1/jobs
  4 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms    2.01ms  31.20ms   90.00%
    Req/Sec   250.10     30.00   300.00     70.00%
  Latency Distribution
     50%  812.00us
     75%    4.50ms
     90%    6.00ms
     99%    1.02s
  2991 requests in 3.00s, 1.20MB read
  Non-2xx or 3xx responses: 7
Requests/sec:    996.95
Transfer/sec:    409.10KB
"""


def test_the_report_is_read_with_its_units() -> None:
    assert parse_wrk(REPORT) == (2991, 996.95, pytest.approx(0.812), pytest.approx(1020.0), 7)


def test_a_report_without_non_2xx_answers_has_none() -> None:
    assert parse_wrk(REPORT.replace("  Non-2xx or 3xx responses: 7\n", ""))[4] == 0


def test_a_report_without_a_latency_distribution_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no rate or latency distribution"):
        parse_wrk(REPORT.replace("     99%    1.02s\n", ""))
