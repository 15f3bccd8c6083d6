"""Schemathesis hooks for Recall (loaded through SCHEMATHESIS_HOOKS by
scripts/schemathesis.sh).

Credentials are set by auth providers, not by a `before_call` hook:
schemathesis applies providers once, when a case is generated, so its
`ignored_auth` check can still remove them and prove that each route
refuses a request without valid credentials.

* client-data and search-data: each its own shared secret in `X-Api-Key`;
* post-call: `ElevenLabs-Signature: t=<unix>,v0=<hex HMAC-SHA256 of
  "<t>.<body>">` with the post-call secret (crates/recall-signature), over
  the exact bytes schemathesis sends, so the success path is exercised;
* /api: the admin token as `Authorization: Bearer`.

The secrets come from the environment the server was started with.
"""

import hashlib
import hmac
import json
import os
import time

import schemathesis

POST_CALL_KEY = os.environ["ELEVENLABS_POST_CALL_KEY"]
CLIENT_DATA_KEY = os.environ["ELEVENLABS_CLIENT_DATA_KEY"]
SEARCH_DATA_KEY = os.environ["ELEVENLABS_SEARCH_DATA_KEY"]
ADMIN_TOKEN = os.environ["RECALL_ADMIN_TOKEN"]


def body_bytes(case) -> bytes:
    """The body as schemathesis' requests transport sends a JSON body."""
    body = case.body
    if body is None or type(body).__name__ == "NotSet":
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, allow_nan=False).encode("utf-8")


def sign(body: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"


def set_header(case, name: str, value: str) -> None:
    headers = dict(case.headers or {})
    headers[name] = value
    case.headers = headers


@schemathesis.auth().apply_to(path="/webhook/post-call")
class PostCallSignature:
    def get(self, case, context):
        return POST_CALL_KEY

    def set(self, case, secret, context):
        set_header(case, "ElevenLabs-Signature", sign(body_bytes(case), secret, int(time.time())))


@schemathesis.auth().apply_to(path="/webhook/client-data")
class ClientDataKey:
    def get(self, case, context):
        return CLIENT_DATA_KEY

    def set(self, case, key, context):
        set_header(case, "X-Api-Key", key)


@schemathesis.auth().apply_to(path="/webhook/search-data")
class SearchDataKey:
    def get(self, case, context):
        return SEARCH_DATA_KEY

    def set(self, case, key, context):
        set_header(case, "X-Api-Key", key)


@schemathesis.auth().apply_to(path_regex="^/api/")
class AdminToken:
    def get(self, case, context):
        return ADMIN_TOKEN

    def set(self, case, token, context):
        set_header(case, "Authorization", f"Bearer {token}")


# Two rules of valid requests that OpenAPI cannot state, so schemathesis'
# positive data breaks them and rightly gets a 400. Only those 400s are set
# aside, recognised by their error; every other failure of the
# positive_data_acceptance check still counts.
#
# * A cursor is valid only when this server issued it in X-Next-Cursor: no
#   schema can describe which opaque strings those are.
# * `from` must not be later than `to`: a rule between two parameters.
SERVER_ONLY_RULES = (
    ('"error":"invalid_cursor"', "cursor:"),
    ('"error":"invalid_time"', "from: must not be later than to"),
)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if response.status_code != 400 or "Schema-valid request rejected" not in failure.title:
        return True
    text = response.text
    return not any(code in text and message in text for code, message in SERVER_ONLY_RULES)
