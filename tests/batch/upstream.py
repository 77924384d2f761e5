"""A scripted OpenAI-compatible model server on 127.0.0.1, in a thread: a real HTTP peer that
subprocesses and Ray workers reach like any other `base_url` member.

Its answer names the first `Q-<n>` token of the conversation ("answer for Q-17"), so every
output row can be matched to its question; a conversation holding `[fail]` gets HTTP 400.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

QUESTION_TOKEN = re.compile(r"Q-\d+")
FAIL_MARK = "[fail]"


def scripted_answer(conversation_text: str) -> str:
    found = QUESTION_TOKEN.search(conversation_text)
    return f"answer for {found.group() if found else 'nothing'}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "\n".join(str(message.get("content", "")) for message in body["messages"])
        with self.server.lock:
            self.server.calls += 1
        time.sleep(self.server.delay_s)
        if FAIL_MARK in text:
            self._send(400, {"error": {"message": "scripted failure", "type": "invalid_request"}})
            return
        self._send(
            200,
            {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": scripted_answer(text)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
            },
        )

    def _send(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay_s = delay_s
        self.calls = 0
        self.lock = threading.Lock()


@contextmanager
def scripted_upstream(delay_s: float = 0.0) -> Iterator[_Server]:
    """Serve on a free port of 127.0.0.1 until the block ends; `server.server_port` is it."""
    server = _Server(delay_s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_config(path: Path, port: int, *, members: int = 2) -> Path:
    """A consensus config whose members and aggregator are the scripted upstream."""
    url = f"http://127.0.0.1:{port}/v1"
    config = {
        "models": [{"id": f"scripted-{n}", "base_url": url} for n in range(members)],
        "aggregator": [{"model": {"id": "scripted-aggregator", "base_url": url}}],
        "iterations": 0,
        # Every member is waited for: the stragglers' cut-off (after a quorum of 1) would
        # leave a member behind whenever the machine is busy, and two runs must agree.
        "quorum": members,
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def write_rows(path: Path, count: int, *, failing: frozenset[int] = frozenset()) -> Path:
    """`count` rows `{"prompt": "... Q-<n> ...", "id": n}`; rows in `failing` ask to fail."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            mark = f" {FAIL_MARK}" if n in failing else ""
            out.write(json.dumps({"prompt": f"Question Q-{n}?{mark}", "id": n}) + "\n")
    return path


def main() -> None:
    """Serve until killed, in a process of its own: `python tests/batch/upstream.py DELAY_S`
    prints the port on its first line (for benchmarks that must not share the GIL with it)."""
    import sys

    with scripted_upstream(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as server:
        print(server.server_port, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
