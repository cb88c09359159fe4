#!/usr/bin/env python3
"""A real IMAP client for the end-to-end tests (Python's imaplib).

Logs in (LOGIN, AUTHENTICATE PLAIN or, for direct comparisons, XOAUTH2), selects
INBOX, fetches every message and prints one JSON document with what it saw, so a
test can compare a fetch through the proxy with the same fetch made directly.
The password / token is read from the environment variable IMAP_SECRET, never argv.
Exit status 2 and a JSON {"error": ...} line when the login is refused.
"""
import argparse
import base64
import hashlib
import imaplib
import json
import os
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--cafile")
    ap.add_argument("--auth", choices=["login", "plain", "xoauth2"], default="login")
    args = ap.parse_args()
    secret = os.environ["IMAP_SECRET"]

    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    if args.tls == "implicit":
        m = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=ctx, timeout=30)
    else:
        m = imaplib.IMAP4(args.host, args.port, timeout=30)
        if args.tls == "starttls":
            m.starttls(ssl_context=ctx)
    try:
        if args.auth == "login":
            m.login(args.user, secret)
        elif args.auth == "plain":
            m.authenticate("PLAIN", lambda _: f"\0{args.user}\0{secret}".encode())
        else:
            m.authenticate("XOAUTH2", lambda _: f"user={args.user}\1auth=Bearer {secret}\1\1".encode())
    except imaplib.IMAP4.error as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(2)

    typ, data = m.select("INBOX")
    assert typ == "OK", (typ, data)
    exists = int(data[0])
    typ, data = m.fetch("1:*", "(RFC822.SIZE BODY.PEEK[])") if exists else ("OK", [])
    assert typ == "OK", (typ, data)
    messages = []
    for item in data:
        if isinstance(item, tuple):
            meta, body = item
            messages.append({
                "meta": meta.decode(),
                "sha256": hashlib.sha256(body).hexdigest(),
                "len": len(body),
                "body_b64": base64.b64encode(body).decode() if len(body) < 4096 else None,
            })
    m.logout()
    print(json.dumps({"exists": exists, "messages": messages}, sort_keys=True))


if __name__ == "__main__":
    main()
