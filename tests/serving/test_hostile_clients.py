"""The real server (`stj serve`: nginx in front of gunicorn) against clients that are slow, stalled, malformed or
killed: others keep being answered within a second, every error is JSON, nothing is left running."""

from __future__ import annotations

import socket
import threading
import time

import psutil
import pytest
import requests

pytestmark = pytest.mark.slow


def _raw(base: str, data: bytes, timeout: float = 10.0) -> tuple[int, str, bytes]:
    """Send ``data`` on a new connection; (status, content type, body) of the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), body


class _Dribbler(threading.Thread):
    """A client that opens a connection and sends ``head`` then ``drip`` one byte every ``every_s``."""

    def __init__(self, base: str, head: bytes, drip: bytes, every_s: float) -> None:
        super().__init__(daemon=True)
        host, port = base.removeprefix("http://").split(":")
        self.conn = socket.create_connection((host, int(port)), 10)
        self.head, self.drip, self.every_s = head, drip, every_s
        self.stop = threading.Event()
        self.closed_after: float | None = None  # seconds until the server hung up, if it did

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.conn.sendall(self.head)
            for byte in self.drip:
                if self.stop.wait(self.every_s):
                    return
                self.conn.sendall(bytes([byte]))
            self.conn.settimeout(30)
            self.conn.recv(1)  # stalled: wait for the server to give up on us
        except OSError:
            pass
        self.closed_after = time.monotonic() - started


def test_slow_and_stalled_clients_do_not_starve_others(stj_server, jpeg: bytes) -> None:
    with stj_server("serve.threads=2", "serve.client_timeout_s=3") as server:
        base = server.base
        slow = []
        for _ in range(6):
            slow += [
                _Dribbler(base, b"POST /predict HTTP/1.1\r\n", b"Host: x\r\nX-Slow: " + b"a" * 200, 0.2),
                _Dribbler(
                    base,
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n",
                    b"\xff" * 200,
                    0.2,
                ),
                _Dribbler(
                    base,
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n"
                    b"\xff\xd8\xff",
                    b"",
                    0,
                ),
            ]
        for client in slow:
            client.start()
        time.sleep(0.5)
        photo, latencies = jpeg, []
        try:
            for _ in range(8):
                for send in (
                    lambda: requests.get(f"{base}/health", timeout=5),
                    lambda: requests.post(f"{base}/predict", files={"image": ("p.jpg", photo)}, timeout=5),
                ):
                    started = time.monotonic()
                    assert send().status_code == 200
                    latencies.append(time.monotonic() - started)
                time.sleep(0.2)
            assert max(latencies) < 1.0, sorted(latencies)[-5:]
            stalled = [c for c in slow if not c.drip]
            for client in stalled:
                client.join(15)
            # the server dropped every stalled body after serve.client_timeout_s of silence
            assert all(c.closed_after is not None and c.closed_after < 3 + 3 for c in stalled)
        finally:
            for client in slow:
                client.stop.set()
                client.conn.close()


@pytest.mark.parametrize("proxy", ["nginx", "none"])
def test_errors_before_flask_are_json(stj_server, jpeg: bytes, proxy: str) -> None:
    with stj_server(f"serve.proxy={proxy}", "serve.max_upload_bytes=100000") as server:
        cases = {
            "bad request line": b"GARBAGE\r\n\r\n",
            "both lengths": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "huge header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
        }
        for name, request in cases.items():
            status, kind, body = _raw(server.base, request)
            assert 400 <= status < 500 and kind.startswith("application/json"), (name, status, kind, body)
            assert b'"error"' in body, name

        host = server.base.split("//")[1].encode()  # an allowed Host: this checks the body limit, not the name
        chunked = (
            b"POST /predict HTTP/1.1\r\nHost: "
            + host
            + b"\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"\xff" * 50000
        chunked += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
        status, kind, body = _raw(server.base, chunked)
        assert status == 413 and kind.startswith("application/json"), (status, body)

        # a Latin-1 file name (as some browsers and curl send it) is just a name
        boundary = "b0undary"
        form = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode()
            + "café photo ü.jpg".encode("latin-1")
            + b'"\r\nContent-Type: image/jpeg\r\n\r\n'
            + jpeg
            + f"\r\n--{boundary}--\r\n".encode()
        )
        resp = requests.post(
            f"{server.base}/predict",
            data=form,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        # no banner, security headers, and only the allowed Host names answered
        assert "Server" not in resp.headers and resp.headers["X-Content-Type-Options"] == "nosniff"
        foreign = requests.get(f"{server.base}/health", headers={"Host": "evil.example"}, timeout=10)
        assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "bad_host"


def _is_worker(process: psutil.Process, master: int) -> bool:
    try:
        line = " ".join(process.cmdline())
        return process.ppid() == master and "flows.cli" in line and "core.processes" not in line
    except psutil.Error:  # gone already
        return False


def test_kill_9_leaves_no_process_behind(stj_server, server_tmp) -> None:
    temp = server_tmp
    with stj_server(env={"TMPDIR": str(temp)}, workers=2) as server:
        family = server.family()
        names = " ".join(p.name() for p in family)
        assert "nginx" in names and len(family) >= 5, names  # master, 2 workers, nginx x2, watchdog
        # a worker that exits (gunicorn replaces it) must not take nginx or the private folder with it
        nginx = [p for p in family if p.name() == "nginx"]
        worker = next(p for p in family if _is_worker(p, server.proc.pid))
        worker.terminate()
        psutil.wait_procs([worker], timeout=15)
        time.sleep(1)
        assert all(p.is_running() for p in nginx)
        assert requests.get(f"{server.base}/health", timeout=10).ok
        below = server.family()[1:]  # the replacement worker included
        server.proc.kill()
        server.proc.wait()
        _, alive = psutil.wait_procs(below, timeout=8)
        assert not alive, [(p.pid, p.name()) for p in alive]
    stale = list(temp.glob("stj-serve-*"))
    assert stale  # SIGKILL left no chance to clean up...
    with stj_server(env={"TMPDIR": str(temp)}):
        assert not any(folder.exists() for folder in stale)  # ...so the next server removes it
