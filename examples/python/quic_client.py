#!/usr/bin/env python3
"""A gradebook client over QUIC, with aioquic: log in, read an average.

QUIC gives what TCP and TLS give (reliable, ordered, encrypted bytes) over
UDP, with streams: this client opens one bidirectional stream per request,
writes the request as one JSON object and ends the stream; the server
writes the reply and ends its side. The end of the stream is the end of the
message: no newline, no length prefix (docs/protocol.md, section 14).

It needs aioquic (`pip install aioquic`), unlike client.py which needs
nothing beyond the standard library. Start a server (TLS is on by default,
and QUIC with it, on the TCP port + 1):

    GRADEBOOK_ADMIN_PASSWORD='change-me-please' \\
        cargo run --release -- serve --listen 127.0.0.1:7302

then, with a student id that exists:

    GRADEBOOK_PASSWORD='change-me-please' python3 examples/python/quic_client.py \\
        --cafile gradebook-data/server-cert.pem --student 1

The QUIC connection logs in once (`auth.login` on its first stream); the
streams opened afterwards are logged in too, so the request for the average
carries no token.
"""

import argparse
import asyncio
import getpass
import json
import os
import ssl
import sys

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamDataReceived, StreamReset

ALPN = "gradebook/1"


class GradebookProtocol(QuicConnectionProtocol):
    """Sends each request on a stream of its own and hands back its reply."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._replies = {}  # stream id -> (bytes so far, future)
        self._next_id = 1

    async def call(self, cmd, args=None):
        """One request, one stream; returns `data`, or raises on an error."""
        request = {"id": self._next_id, "cmd": cmd, "args": args or {}}
        self._next_id += 1
        stream_id = self._quic.get_next_available_stream_id()
        done = self._loop.create_future()
        self._replies[stream_id] = (bytearray(), done)
        # end_stream=True: the end of the stream frames the request.
        self._quic.send_stream_data(stream_id, json.dumps(request).encode(), end_stream=True)
        self.transmit()
        reply = json.loads(await asyncio.wait_for(done, 30))
        if not reply["ok"]:
            error = reply["error"]
            raise RuntimeError(f"{cmd}: {error['code']}: {error['message']}")
        return reply["data"]

    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived) and event.stream_id in self._replies:
            data, done = self._replies[event.stream_id]
            data.extend(event.data)
            if event.end_stream:
                del self._replies[event.stream_id]
                done.set_result(bytes(data))
        elif isinstance(event, StreamReset) and event.stream_id in self._replies:
            _, done = self._replies.pop(event.stream_id)
            done.set_exception(ConnectionError(f"stream reset ({event.error_code})"))
        elif isinstance(event, ConnectionTerminated):
            for _, done in self._replies.values():
                if not done.done():
                    done.set_exception(ConnectionError(f"connection closed: {event.reason_phrase}"))
            self._replies.clear()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=7303, help="the QUIC port (TCP port + 1)")
    parser.add_argument("--cafile", help="trust this certificate (the server's server-cert.pem)")
    parser.add_argument("--insecure", action="store_true", help="check no certificate (tests only)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--student", type=int, required=True, help="whose average to read")
    options = parser.parse_args()

    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
    if options.insecure:
        config.verify_mode = ssl.CERT_NONE
    elif options.cafile:
        config.load_verify_locations(options.cafile)
    password = os.environ.get("GRADEBOOK_PASSWORD") or getpass.getpass(f"Password for {options.user}: ")

    async with connect(
        options.host, options.port, configuration=config, create_protocol=GradebookProtocol
    ) as client:
        login = await client.call("auth.login", {"username": options.user, "password": password})
        print(f"logged in as {options.user} ({login['role']}) over QUIC")
        average = await client.call("student.average", {"id": options.student})
        if average["average"] is None:
            print(f"student {options.student}: no average yet")
        else:
            print(
                f"student {options.student}: average {average['average']:.2f} "
                f"({average['counted']} grade(s) counted)"
            )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (RuntimeError, ConnectionError, OSError, asyncio.TimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
