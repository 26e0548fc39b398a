#!/usr/bin/python3
"""An SMTP server on loopback (Debian's python3-aiosmtpd) for meshdeploy's tests.

Every accepted message is appended as one JSON line to --log:
  {"mail_from", "rcpt_tos", "tls", "auth_user", "headers": {...}, "subject",
   "parts": [{"type", "text"}], "raw"}
where "subject" is the RFC 2047-decoded Subject and each part's text is
decoded from its transfer encoding.

Usage:
  smtp_receiver.py --port-file F --log L [--cert C --key K [--require-starttls]]
                   [--script 451,550]
Authentication is offered when $SMTP_AUTH_USER and $SMTP_AUTH_PASSWORD are set
(never on argv); then it is required. --script answers the first DATA
commands with the given SMTP codes, then accepts.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, log_path, script):
        self.log = open(log_path, "a", encoding="utf-8")
        self.script = script

    async def handle_DATA(self, server, session, envelope):
        if self.script:
            code = self.script.pop(0)
            return f"{code} scripted answer {code}"
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({"type": part.get_content_type(), "text": part.get_content()})
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_user": (session.auth_data.login.decode()
                          if isinstance(session.auth_data, LoginPassword) else None),
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "subject": str(msg["subject"]),
            "parts": parts,
            "raw": raw.decode("utf-8", "replace"),
        }
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--script", default="")
    args = p.parse_args()

    user = os.environ.get("SMTP_AUTH_USER")
    password = os.environ.get("SMTP_AUTH_PASSWORD")
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    handler = Handler(args.log, [s for s in args.script.split(",") if s])

    def factory():
        return SMTP(handler, hostname="receiver.test", tls_context=tls,
                    require_starttls=bool(tls) and args.require_starttls,
                    authenticator=authenticator if user else None,
                    auth_required=bool(user), auth_require_tls=bool(tls))

    async def serve():
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, args.port_file)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
