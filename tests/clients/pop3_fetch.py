#!/usr/bin/env python3
"""A real POP3 client for the end-to-end tests (Python's poplib).

Logs in (USER/PASS, AUTH PLAIN or, for direct comparisons, AUTH XOAUTH2), lists and
retrieves every message, and prints one JSON document with what it saw. The
password / token comes from the environment variable POP3_SECRET, never argv.
Exit status 2 and a JSON {"error": ...} line when the login is refused.
"""
import argparse
import base64
import hashlib
import json
import os
import poplib
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--cafile")
    ap.add_argument("--auth", choices=["user", "plain", "xoauth2"], default="user")
    args = ap.parse_args()
    secret = os.environ["POP3_SECRET"]

    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    if args.tls == "implicit":
        p = poplib.POP3_SSL(args.host, args.port, context=ctx, timeout=30)
    else:
        p = poplib.POP3(args.host, args.port, timeout=30)
        if args.tls == "starttls":
            p.stls(context=ctx)
    try:
        if args.auth == "user":
            p.user(args.user)
            p.pass_(secret)
        elif args.auth == "plain":
            ir = base64.b64encode(f"\0{args.user}\0{secret}".encode()).decode()
            p._shortcmd(f"AUTH PLAIN {ir}")
        else:
            ir = base64.b64encode(f"user={args.user}\1auth=Bearer {secret}\1\1".encode()).decode()
            p._shortcmd(f"AUTH XOAUTH2 {ir}")
    except poplib.error_proto as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(2)

    count, size = p.stat()
    listing = [line.decode() for line in p.list()[1]]
    messages = []
    for i in range(1, count + 1):
        _, lines, octets = p.retr(i)
        body = b"\r\n".join(lines) + b"\r\n"
        messages.append({"n": i, "octets": octets, "sha256": hashlib.sha256(body).hexdigest(), "len": len(body)})
    p.quit()
    print(json.dumps({"count": count, "size": size, "list": listing, "messages": messages}, sort_keys=True))


if __name__ == "__main__":
    main()
