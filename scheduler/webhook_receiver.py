"""``python -m scheduler.webhook_receiver``: a small local receiver of jobledger webhooks, for trying them out.

It listens on 127.0.0.1, checks each POST's signature with the secret in ``--secret-file``, answers 200 (or 400
for a bad signature) and appends one JSON line per request to ``--out``: whether the signature held, the
idempotency key and the body. Not a production receiver: a real one also remembers the keys it has handled.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from scheduler.notify_senders import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify_signature


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler.webhook_receiver")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--secret-file", type=Path, help="the signing secret (else signatures are not checked)")
    parser.add_argument("--out", type=Path, required=True, help="a JSON line per request is appended here")
    parser.add_argument("--url-file", type=Path, help="the receiver's URL is written here once it listens")
    options = parser.parse_args(argv)
    secret = options.secret_file.read_text().strip() if options.secret_file else None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            header = self.headers.get(SIGNATURE_HEADER, "")
            verified = secret is not None and verify_signature(secret, header, body, time.time())
            entry = {"path": self.path, "verified": verified, "key": self.headers.get(IDEMPOTENCY_HEADER)}
            with options.out.open("a") as out:
                out.write(json.dumps({**entry, "body": json.loads(body or b"null")}) + "\n")
            self.send_response(200 if verified or secret is None else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"listening on {url}", flush=True)
    if options.url_file:
        options.url_file.write_text(url + "\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
