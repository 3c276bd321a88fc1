#!/usr/bin/env python3
# A registry that is slow but steady: forwards GET/HEAD to a real registry (UPSTREAM host:port,
# plain HTTP) and sends blob bodies at RATE bytes per second (manifests at full speed), so a pull
# of a real image takes as long as a test needs and still completes (above the client's low-speed
# limit). Logs each request line, "blob started (N in flight)" and "blob ended (N in flight)" to
# LOG, N counting the blob bodies being sent at that moment (parallel pulls show N > 1).
# FAIL (optional): a blob digest answered with 403 Forbidden half a second after its GET began
# (a layer that fails while the others are in flight); "-" for none.
# HOLD, GATE (optional): the GET of blob HOLD is answered only once the file GATE exists (at most
# 20 s later), so a test can see what a pull does while that blob is still on its way; logs "blob
# held", then "blob released by the gate" or "blob released by the timeout".
# Usage: throttle-proxy.py PORT UPSTREAM RATE LOG [FAIL [HOLD GATE]]
import http.server, os, sys, threading, time, urllib.error, urllib.request

port, upstream, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
journal = open(sys.argv[4], "a", buffering=1)  # line-buffered: a test reads it while we run
fail_digest = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else None
hold_digest, gate = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 7 else (None, None)
lock = threading.Lock()
in_flight = 0


def flight(delta, what):
    global in_flight
    with lock:
        in_flight += delta
        print("blob %s (%d in flight)" % (what, in_flight), file=journal)
CHUNK = 8192
PASSED = ("Content-Type", "Content-Length", "Docker-Content-Digest", "Docker-Distribution-Api-Version",
          "Www-Authenticate")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        print(self.requestline, file=journal)

    def forward(self, body):
        # Clients send Accept more than once (one media type each): joined, or only the last counts.
        headers = {k: ", ".join(self.headers.get_all(k)) for k in ("Accept", "Authorization", "Range")
                   if self.headers.get_all(k)}
        if fail_digest and self.path.endswith("/blobs/" + fail_digest):
            time.sleep(0.5)
            print("blob failed on purpose", file=journal)
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if hold_digest and body and self.path.endswith("/blobs/" + hold_digest):
            print("blob held", file=journal)
            waited = 0.0
            while not os.path.exists(gate) and waited < 20:
                time.sleep(0.02)
                waited += 0.02
            print("blob released by the " + ("gate" if os.path.exists(gate) else "timeout"), file=journal)
        req = urllib.request.Request("http://" + upstream + self.path, headers=headers, method=self.command)
        try:
            resp = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e:
            resp = e
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for k in PASSED:
            if resp.headers.get(k) is not None:
                self.send_header(k, resp.headers[k])
        self.end_headers()
        if not body:
            return
        slow = "/blobs/" in self.path
        if slow:
            flight(1, "started")
        try:
            while True:
                data = resp.read(CHUNK)
                if not data:
                    break
                # Paced before the write, not after: the blob counts as ended as soon as its last
                # byte is out (a client that starts its next blob then has never two in flight).
                if slow:
                    time.sleep(len(data) / rate)
                self.wfile.write(data)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            print("aborted by the client", file=journal)
        finally:
            if slow:
                flight(-1, "ended")

    def do_GET(self):
        self.forward(True)

    def do_HEAD(self):
        self.forward(False)


http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
