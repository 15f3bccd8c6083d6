#!/usr/bin/env python3
"""Posting and checking for scripts/soak.sh (standard library only).

post: signs and posts new post_call_transcription events (one new caller
each) with N in flight, appending the conversation id of every event
answered 200 to an "acknowledged" file (flushed line by line), until the
count is reached, the time is up, or the server goes away.

check: for every acknowledged event, asks the operator API that its call
is indexed and that its caller has exactly the memories one call leaves
(the name fact and the call), no fewer (lost) and no more (duplicated).
"""

import argparse
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import sys
import threading
import time
import urllib.parse

TEMPLATE = "scripts/bench/post-call.json"


def caller_of(conversation):
    """A distinct E.164 number per conversation id ending in digits (never
    the template's agent number, +15550001111: no memory is kept under the
    agent's own line)."""
    digits = "".join(ch for ch in conversation if ch.isdigit())[-7:].rjust(7, "0")
    return "+4477" + digits


def sign(body, secret):
    t = str(int(time.time()))
    mac = hmac.new(secret.encode(), (t + ".").encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v0={mac}"


def post(args):
    template = open(TEMPLATE, encoding="utf-8").read()
    url = urllib.parse.urlparse(args.url)
    lock = threading.Lock()
    out = open(args.acknowledged, "a", encoding="utf-8")
    deadline = time.time() + args.seconds
    counts = {"ok": 0, "refused": 0, "errors": 0}
    stop = threading.Event()

    def one(i):
        if stop.is_set() or time.time() > deadline:
            return
        conversation = f"{args.prefix}{i:07d}"
        body = (
            template.replace("{{conversation_id}}", conversation)
            .replace("{{caller}}", caller_of(conversation))
            .encode()
        )
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            conn.request(
                "POST",
                "/webhook/post-call",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "ElevenLabs-Signature": sign(body, args.secret),
                },
            )
            status = conn.getresponse().status
            conn.close()
        except OSError:
            with lock:
                counts["errors"] += 1
                if counts["errors"] > args.concurrency * 2:
                    stop.set()  # the server is gone
            return
        with lock:
            if status == 200:
                counts["ok"] += 1
                out.write(conversation + "\n")
                out.flush()
            else:
                counts["refused"] += 1

    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, range(args.start, args.start + args.count)))
    out.close()
    print(f"ok={counts['ok']} refused={counts['refused']} errors={counts['errors']}")


def get_json(conn, path, token):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    response = conn.getresponse()
    body = response.read()
    return response.status, (json.loads(body) if body else None)


def check(args):
    url = urllib.parse.urlparse(args.url)
    acknowledged = sorted(set(open(args.acknowledged, encoding="utf-8").read().split()))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    lost, duplicated, unindexed = [], [], []
    for conversation in acknowledged:
        phone = urllib.parse.quote(caller_of(conversation))
        status, memories = get_json(conn, f"/api/users/{phone}/memories?limit=100", args.token)
        n = len(memories) if status == 200 else 0
        if n < 2:
            lost.append(conversation)
        elif n > 2:
            duplicated.append(conversation)
        status, _ = get_json(conn, f"/api/calls/{conversation}", args.token)
        if status != 200:
            unindexed.append(conversation)
    print(
        f"acknowledged={len(acknowledged)} lost={len(lost)} duplicated={len(duplicated)} "
        f"unindexed={len(unindexed)}"
    )
    for name, items in (("lost", lost), ("duplicated", duplicated), ("unindexed", unindexed)):
        if items:
            print(f"{name}: {' '.join(items[:20])}", file=sys.stderr)
    return 1 if lost or duplicated or unindexed else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("post")
    p.add_argument("--url", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--acknowledged", required=True)
    c = sub.add_parser("check")
    c.add_argument("--url", required=True)
    c.add_argument("--token", required=True)
    c.add_argument("--acknowledged", required=True)
    args = parser.parse_args()
    if args.command == "post":
        post(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
