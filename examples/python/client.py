#!/usr/bin/env python3
"""A gradebook client in standard-library Python: sockets, TLS and JSON Lines.

This is the "SAE 302" assignment's client done carefully. It connects to a
gradebook server, logs in, creates a promotion, enrols three students, gives
them grades, then prints each student's average and the promotion's average
and statistics.

Start a server for it (plaintext, on loopback, for learning):

    GRADEBOOK_ADMIN_PASSWORD='change-me-please' \\
        cargo run --release -- serve --plaintext --listen 127.0.0.1:7302

then run:

    GRADEBOOK_PASSWORD='change-me-please' python3 examples/python/client.py

Against a TLS server (the default mode) add `--tls` and either
`--cafile gradebook-data/server-cert.pem` (trust the server's self-signed
certificate, the right way) or `--insecure` (check nothing: for a quick test
only).

Three things that student implementations usually get wrong, and how this
client gets them right:

1. Framing. TCP carries a stream of bytes, not messages: one `recv()` may
   return half a reply, or two replies glued together. The protocol ends
   every message with a newline, so we read through a buffered reader and
   take one *line* at a time (`readline`), never "one recv = one message".
2. Errors. Every reply says `"ok": true` or `"ok": false`; we check it on
   every call, and stop with the server's error code and message.
3. Secrets. The password comes from an environment variable or a prompt
   rather than the command line, where other users could see it (`ps`).

The protocol is described in docs/protocol.md.
"""

import argparse
import datetime
import decimal
import getpass
import json
import os
import socket
import ssl
import sys

# The data this example creates: (first name, last name, grades), each grade
# being (subject, value, coefficient). A value is a number from 0 to 20 with
# at most 2 decimals, or one of the special marks:
#   "ABS" unjustified absence: counts as 0, with its coefficient;
#   "EXC" excused: not counted at all;
#   "ATT" pending: not counted yet, and the average is flagged incomplete.
STUDENTS = [
    ("Ada", "Lovelace", [("Networks", 16, 2), ("Maths", 12.5, 1), ("Physics", "EXC", 1)]),
    ("Alan", "Turing", [("Networks", 11, 2), ("Maths", "ABS", 1)]),
    ("Grace", "Hopper", [("Networks", 15, 2), ("Maths", 13, 1), ("Physics", "ATT", 1)]),
]

# The longest reply line we accept. The server's replies are far smaller;
# the limit keeps a misbehaving peer from making us buffer without end.
MAX_LINE = 16 * 1024 * 1024


class ServerError(Exception):
    """The server answered a request with `"ok": false`."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class GradebookClient:
    """One connection to a gradebook server, speaking JSON Lines."""

    def __init__(self, host, port, use_tls=False, cafile=None, insecure=False, timeout=30.0):
        # A TCP connection. The timeout applies to every later read and
        # write too, so a server that stops answering cannot hang us forever.
        sock = socket.create_connection((host, port), timeout=timeout)
        if use_tls:
            if insecure:
                # Encrypts, but accepts any certificate: anyone in the middle
                # could pretend to be the server. For quick tests only.
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                # Verifies the server's certificate against `cafile` (the
                # server's own self-signed certificate will do), or against
                # the system's authorities when no file is given.
                context = ssl.create_default_context(cafile=cafile)
            # The server speaks TLS 1.3 only.
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            # server_hostname is checked against the certificate's names
            # (the generated certificate has localhost, 127.0.0.1 and ::1).
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        # The buffered reader: it keeps whatever bytes arrived beyond the
        # current line for the next readline(), so replies are cut exactly
        # at the newlines, however TCP split or merged them on the way.
        self.reader = sock.makefile("rb")
        self.next_id = 1

    def close(self):
        self.reader.close()
        self.sock.close()

    # --- Sending and receiving one message -------------------------------

    def _encode(self, cmd, args):
        """One request as a line of JSON, with a fresh id; returns (id, bytes)."""
        request_id = self.next_id
        self.next_id += 1
        request = {"id": request_id, "cmd": cmd}
        if args:
            request["args"] = args
        # json.dumps never writes a raw newline (it escapes those inside
        # strings), so the newline we add is the one and only frame end.
        line = json.dumps(request, ensure_ascii=False) + "\n"
        return request_id, line.encode("utf-8")

    def _receive(self):
        """Reads exactly one reply line and decodes it."""
        line = self.reader.readline(MAX_LINE + 1)
        if not line:
            raise ConnectionError("the server closed the connection")
        if not line.endswith(b"\n"):
            raise ConnectionError("reply line too long or cut short")
        return json.loads(line)

    @staticmethod
    def _check(reply, request_id):
        """Returns the reply's data, or raises its error."""
        # Replies come back in request order, each echoing its request's id:
        # a different id means we lost track of the conversation.
        if reply.get("id") != request_id:
            raise ConnectionError(f"expected the reply to request {request_id}, got {reply!r}")
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ServerError(error.get("code", "?"), error.get("message", ""))
        return reply.get("data", {})

    # --- The two ways to call the server ---------------------------------

    def call(self, cmd, args=None):
        """Sends one request and waits for its reply; returns its data."""
        request_id, data = self._encode(cmd, args)
        # sendall, not send: send may write only part of the bytes.
        self.sock.sendall(data)
        return self._check(self._receive(), request_id)

    def call_many(self, requests):
        """Pipelining: sends several requests in one write, then reads the
        replies, which come back in the same order. One round trip instead
        of one per request.

        `requests` is a list of (cmd, args); returns the list of data. (For
        thousands of requests, send them in batches: a client that writes
        without ever reading can fill both sides' buffers and stall.)
        """
        ids = []
        batch = bytearray()
        for cmd, args in requests:
            request_id, data = self._encode(cmd, args)
            ids.append(request_id)
            batch += data
        self.sock.sendall(batch)
        # Read every reply before looking at any, so that an error in the
        # middle does not leave unread replies on the connection.
        replies = [self._receive() for _ in ids]
        return [self._check(reply, request_id) for reply, request_id in zip(replies, ids)]


def shown(value):
    """A number as people read it: 2 decimals, halves rounded away from zero.

    The server sends averages at full precision (17.166666666666668) and
    leaves rounding to clients. Python's round() and "%.2f" work on the
    binary float, in which 12.345 is really 12.3449999..., and would show
    12.34; going through the decimal text of the number gives 12.35, like
    the server's ranks.
    """
    if value is None:
        return "-"
    exact = decimal.Decimal(repr(value))
    return str(exact.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_UP))


def mark(value):
    """A grade value or coefficient as sent: 16.0 as 16, 12.5 as is, "ABS" as is."""
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def parse_arguments():
    parser = argparse.ArgumentParser(
        description="Log in to a gradebook server, create a promotion with students "
        "and grades, and print the averages."
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7302, help="server port (default: 7302)")
    parser.add_argument("--user", default="admin", help="username (default: admin)")
    parser.add_argument(
        "--password",
        help="password (better: set GRADEBOOK_PASSWORD, or type it when asked)",
    )
    parser.add_argument(
        "--promotion",
        default="SAE302-demo",
        help="name of the promotion to create (default: SAE302-demo)",
    )
    parser.add_argument(
        "--tls", action="store_true", help="connect with TLS (a server started without --plaintext)"
    )
    parser.add_argument(
        "--cafile", help="with --tls: the certificate to trust, e.g. gradebook-data/server-cert.pem"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="with --tls: do not verify the certificate"
    )
    args = parser.parse_args()
    if (args.cafile or args.insecure) and not args.tls:
        parser.error("--cafile and --insecure go with --tls")
    if args.password is None:
        args.password = os.environ.get("GRADEBOOK_PASSWORD")
    if args.password is None:
        if not sys.stdin.isatty():
            parser.error("no password: use --password or set GRADEBOOK_PASSWORD")
        args.password = getpass.getpass(f"password for {args.user}: ")
    return args


def run(args):
    client = GradebookClient(
        args.host, args.port, use_tls=args.tls, cafile=args.cafile, insecure=args.insecure
    )
    try:
        transport = "TLS" if args.tls else "plaintext"
        hello = client.call("hello")
        print(f"connected to {args.host}:{args.port} ({transport}): "
              f"{hello['server']} {hello['version']}, protocol {hello['protocol']}")

        # After a successful login this connection is authenticated: the
        # requests that follow need no token.
        login = client.call("auth.login", {"username": args.user, "password": args.password})
        print(f"logged in as {args.user} ({login['role']})")

        # 1. Create the promotion.
        year = datetime.date.today().year
        promotion = client.call("promotion.create", {"name": args.promotion, "year": year})
        print(f"created promotion {promotion['name']} ({promotion['year']})")

        # 2. Add the students, and 3. their grades: one student.add each (we
        # need the id the server gives), then all of a student's grades in
        # one pipelined write.
        enrolled = []  # (id, "First Last")
        for first_name, last_name, grades in STUDENTS:
            student = client.call(
                "student.add",
                {"promotion": args.promotion, "first_name": first_name, "last_name": last_name},
            )
            name = f"{first_name} {last_name}"
            enrolled.append((student["id"], name))
            requests = [
                ("grade.add", {"student": student["id"], "subject": subject, "value": value,
                               "coefficient": coefficient})
                for subject, value, coefficient in grades
            ]
            added = client.call_many(requests)
            marks = ", ".join(
                f"{g['subject']} {mark(g['value'])} (x{mark(g['coefficient'])})" for g in added
            )
            print(f"added student {student['id']} {name}: {marks}")

        # 4. Each student's average.
        print()
        print("Student averages:")
        for student_id, name in enrolled:
            average = client.call("student.average", {"id": student_id})
            note = "  (incomplete: a grade is pending)" if average["incomplete"] else ""
            print(f"  {name:<16} {shown(average['average']):>6}{note}")

        # 5. The promotion's average: the mean of its students' averages.
        stats = client.call("promotion.average", {"name": args.promotion})
        print()
        print(f"Promotion {stats['name']}: average {shown(stats['average'])} "
              f"over {stats['count']} of {stats['students']} students")
        print("  " + "  ".join(
            f"{key} {shown(stats[key])}" for key in ("min", "q1", "median", "q3", "max", "stddev")
        ))

        # And the ranking, from promotion.show (equal averages share a rank).
        show = client.call("promotion.show", {"name": args.promotion})
        print("Ranking:")
        for s in show["students"]:
            rank = s["rank"] if s["rank"] is not None else "-"
            name = f"{s['first_name']} {s['last_name']}"
            print(f"  {rank:>2}. {name:<16} {shown(s['average']):>6}")

        client.call("auth.logout")
    finally:
        client.close()


def main():
    args = parse_arguments()
    try:
        run(args)
    except ServerError as e:
        # The code is stable (scripts may test it); the message is for people.
        print(f"error from the server: {e.code}: {e.message}", file=sys.stderr)
        return 1
    except ssl.SSLError as e:
        print(f"TLS error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        # OSError: connection refused, reset, timed out (and ConnectionError);
        # ValueError: a reply that is not valid JSON.
        print(f"connection error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
