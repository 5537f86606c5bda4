"""The local stack under a burst of simultaneous connections, as a provider's redelivery storm makes."""

from __future__ import annotations

import concurrent.futures
import http.client
import threading
from urllib.parse import urlsplit

import pytest

from pullbridge_local.server import LocalStack

pytestmark = pytest.mark.e2e

BURST = 80
# A SYN that a full listen queue drops is sent again only after 1 s (the kernel's first retransmission
# timeout), so a connect that takes longer than this met a full queue. With room in the queue, the kernel
# completes a loopback connect at once, however busy the machine.
CONNECT_TIMEOUT_SECONDS = 0.75
# The connections arrive all at once, which is what fills a listen queue. Their requests then take turns,
# a few at a time: as on Lambda, every request beyond the idle environments starts a new worker process.
CONCURRENT_REQUESTS = 4


def test_a_burst_of_simultaneous_connections_is_served_without_a_connection_error(
    local_stack: LocalStack,
) -> None:
    port = urlsplit(local_stack.url).port
    barrier = threading.Barrier(BURST)
    turns = threading.Semaphore(CONCURRENT_REQUESTS)

    def get_health(_: int) -> int | str:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT_SECONDS)
        barrier.wait()
        try:
            connection.connect()
            connection.sock.settimeout(30)
            with turns:
                connection.request("GET", "/health")
                return connection.getresponse().status
        except OSError as exc:
            return repr(exc)
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
        outcomes = list(pool.map(get_health, range(BURST)))

    assert [outcome for outcome in outcomes if outcome != 200] == []
