#!/usr/bin/python3
"""A Standard Webhooks receiver (and a Slack-shaped one) for meshdeploy's tests.

It checks every request independently of meshdeploy's code: the signature
with Python's hmac/base64 (after checking its own implementation against the
specification's test vector at start), the timestamp tolerance, the webhook-id
as an idempotency key, and, in --slack mode, the Block Kit shape and limits.

Every request is appended as one JSON line to --log:
  {"path", "headers", "body", "status", "verified", "duplicate", "problems"}

Usage:
  webhook_receiver.py --port-file F --log L [--slack] [--port N]
                      [--script 503,429:2,200] [--redirect]
Signing keys (whsec_...) come space-separated in $WEBHOOK_SECRETS (never on
argv). --script answers the first requests with the given statuses in order
(STATUS or STATUS:RETRY_AFTER_SECONDS), then 200. Standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 5 * 60

# The Standard Webhooks reference libraries' signing test vector.
SPEC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def signature(key: str, msg_id: str, ts: int, body: bytes) -> str:
    raw = base64.b64decode(key[len("whsec_"):] if key.startswith("whsec_") else key)
    signed = msg_id.encode() + b"." + str(ts).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(raw, signed, hashlib.sha256).digest()).decode()


def verify(keys, headers, body: bytes):
    """Returns a list of problems; empty when the request is authentic."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return ["missing webhook-id, webhook-timestamp or webhook-signature"]
    try:
        ts_int = int(ts)
    except ValueError:
        return ["webhook-timestamp is not an integer"]
    problems = []
    if abs(time.time() - ts_int) > TOLERANCE_S:
        problems.append("webhook-timestamp outside the tolerance")
    offered = [s for s in sigs.split(" ") if s.startswith("v1,")]
    if not any(hmac.compare_digest(signature(k, msg_id, ts_int, body), s)
               for k in keys for s in offered):
        problems.append("no signature matches")
    return problems


def limit(problems, what, text, n):
    if not isinstance(text, str):
        problems.append(f"{what} is not a string")
    elif len(text) > n:
        problems.append(f"{what} has {len(text)} characters, more than {n}")


def check_text_object(problems, what, obj, n, kinds=("plain_text", "mrkdwn")):
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        problems.append(f"{what} is not a text object of type {'/'.join(kinds)}")
        return
    limit(problems, what + ".text", obj.get("text"), n)
    if not obj.get("text"):
        problems.append(f"{what}.text is empty")


def check_block_kit(msg):
    """Block Kit rules of the blocks meshdeploy uses (api.slack.com/reference/block-kit)."""
    problems = []
    if not isinstance(msg, dict):
        return ["message is not a JSON object"]
    if "text" in msg:
        limit(problems, "text", msg["text"], 40000)
    blocks = msg.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return problems + ["blocks is missing or empty"]
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks, more than 50")
    for i, b in enumerate(blocks):
        where = f"blocks[{i}]"
        t = b.get("type") if isinstance(b, dict) else None
        if t == "header":
            check_text_object(problems, where + ".text", b.get("text"), 150, ("plain_text",))
        elif t == "section":
            if "text" not in b and "fields" not in b:
                problems.append(where + " has neither text nor fields")
            if "text" in b:
                check_text_object(problems, where + ".text", b["text"], 3000)
            if "fields" in b:
                if not isinstance(b["fields"], list) or not 1 <= len(b["fields"]) <= 10:
                    problems.append(where + ".fields must hold 1 to 10 items")
                else:
                    for j, f in enumerate(b["fields"]):
                        check_text_object(problems, f"{where}.fields[{j}]", f, 2000)
        elif t == "context":
            els = b.get("elements")
            if not isinstance(els, list) or not 1 <= len(els) <= 10:
                problems.append(where + ".elements must hold 1 to 10 items")
            else:
                for j, e in enumerate(els):
                    check_text_object(problems, f"{where}.elements[{j}]", e, 3000)
        elif t == "actions":
            els = b.get("elements")
            if not isinstance(els, list) or not 1 <= len(els) <= 25:
                problems.append(where + ".elements must hold 1 to 25 items")
            else:
                for j, e in enumerate(els):
                    if e.get("type") != "button":
                        problems.append(f"{where}.elements[{j}] is not a button")
                        continue
                    check_text_object(problems, f"{where}.elements[{j}].text", e.get("text"), 75,
                                      ("plain_text",))
                    if "url" in e:
                        limit(problems, f"{where}.elements[{j}].url", e["url"], 3000)
        elif t == "divider":
            pass
        else:
            problems.append(f"{where} has unknown type {t!r}")
    return problems


class Receiver:
    def __init__(self, args):
        self.args = args
        self.keys = os.environ.get("WEBHOOK_SECRETS", "").split()
        self.script = [s for s in (args.script or "").split(",") if s]
        self.seen = set()
        self.lock = threading.Lock()
        self.log = open(args.log, "a", encoding="utf-8")

    def handle(self, path, headers, body):
        with self.lock:
            problems = []
            duplicate = False
            verified = None
            if self.args.slack:
                try:
                    problems = check_block_kit(json.loads(body))
                except ValueError as e:
                    problems = [f"body is not JSON: {e}"]
            else:
                problems = verify(self.keys, headers, body)
                verified = not problems
                msg_id = headers.get("webhook-id", "")
                duplicate = msg_id in self.seen
            status, retry_after = 200, None
            if self.script:
                spec = self.script.pop(0).split(":")
                status = int(spec[0])
                retry_after = spec[1] if len(spec) > 1 else None
            elif problems:
                status = 400 if self.args.slack else 401
            if status == 200 and not self.args.slack:
                self.seen.add(headers.get("webhook-id", ""))
            record = {"path": path, "headers": headers, "body": body.decode("utf-8", "replace"),
                      "status": status, "verified": verified, "duplicate": duplicate,
                      "problems": problems, "at": time.time()}
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
            answer = "ok" if status == 200 else ("; ".join(problems) or f"scripted {status}")
            return status, retry_after, answer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--slack", action="store_true")
    p.add_argument("--script")
    args = p.parse_args()

    if signature(SPEC_KEY, SPEC_ID, SPEC_TS, SPEC_BODY) != SPEC_SIG:
        print("receiver: own signer fails the specification test vector", file=sys.stderr)
        return 3
    receiver = Receiver(args)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, retry_after, answer = receiver.handle(self.path, headers, body)
            data = answer.encode()
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
