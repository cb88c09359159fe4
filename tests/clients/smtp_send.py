#!/usr/bin/env python3
"""A real SMTP submission client for the end-to-end tests (Python's smtplib).

Logs in with AUTH PLAIN or AUTH LOGIN (or XOAUTH2 for direct comparisons) and
sends the message read from the file --message. The secret comes from the
environment variable SMTP_SECRET. Prints a JSON line; exit status 2 when the login
is refused, 3 when sending fails.
"""
import argparse
import base64
import json
import os
import smtplib
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--cafile")
    ap.add_argument("--auth", choices=["plain", "login", "login-no-ir", "xoauth2"], default="plain")
    ap.add_argument("--mail-from", required=True)
    ap.add_argument("--rcpt", action="append", required=True)
    ap.add_argument("--message", required=True)
    args = ap.parse_args()
    secret = os.environ["SMTP_SECRET"]

    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    if args.tls == "implicit":
        s = smtplib.SMTP_SSL(args.host, args.port, context=ctx, timeout=60)
    else:
        s = smtplib.SMTP(args.host, args.port, timeout=60)
    s.ehlo("client.example.com")
    if args.tls == "starttls":
        s.starttls(context=ctx)
        s.ehlo("client.example.com")
    ehlo = s.ehlo_resp.decode(errors="replace")
    try:
        s.user, s.password = args.user, secret
        if args.auth == "plain":
            s.auth("PLAIN", s.auth_plain)
        elif args.auth == "login":
            s.auth("LOGIN", s.auth_login)
        elif args.auth == "login-no-ir":
            s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        else:
            s.auth("XOAUTH2", lambda challenge=None: f"user={args.user}\1auth=Bearer {secret}\1\1", initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as e:
        print(json.dumps({"error": e.smtp_code, "message": e.smtp_error.decode(errors="replace"), "ehlo": ehlo}))
        sys.exit(2)
    with open(args.message, "rb") as f:
        msg = f.read()
    try:
        refused = s.sendmail(args.mail_from, args.rcpt, msg)
    except smtplib.SMTPException as e:
        print(json.dumps({"send_error": str(e), "ehlo": ehlo}))
        sys.exit(3)
    s.quit()
    print(json.dumps({"refused": list(refused), "ehlo": ehlo}))


if __name__ == "__main__":
    main()
