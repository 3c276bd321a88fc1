#!/usr/bin/env python3
# A registry that is slow but steady: forwards GET/HEAD to a real registry (UPSTREAM host:port,
# plain HTTP) and sends blob bodies at RATE bytes per second (manifests at full speed), so a pull
# of a real image takes as long as a test needs and still completes (above the client's low-speed
# limit). Logs each request line and "blob started" to LOG.
# Usage: throttle-proxy.py PORT UPSTREAM RATE LOG
import http.server, sys, time, urllib.error, urllib.request

port, upstream, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
journal = open(sys.argv[4], "a", buffering=1)  # line-buffered: a test reads it while we run
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
            print("blob started", file=journal)
        try:
            while True:
                data = resp.read(CHUNK)
                if not data:
                    break
                self.wfile.write(data)
                self.wfile.flush()
                if slow:
                    time.sleep(len(data) / rate)
        except (BrokenPipeError, ConnectionResetError):
            print("aborted by the client", file=journal)

    def do_GET(self):
        self.forward(True)

    def do_HEAD(self):
        self.forward(False)


http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
