#!/usr/bin/env python3
# A registry for one image, slow/app:v1, whose only layer trickles (1 KiB every 0.2 s of 64 MiB
# claimed): a pull stays in its download until it is cancelled. Logs "blob started" when a blob
# GET begins. Usage: trickle-registry.py PORT LOG
import hashlib, http.server, json, sys, time

port, log = int(sys.argv[1]), sys.argv[2]
LAYER_SIZE = 64 << 20
layer_digest = "sha256:" + "ab" * 32
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "cd" * 32]}}).encode()
config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": config_digest, "size": len(config)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": layer_digest, "size": LAYER_SIZE}]}).encode()


def note(text):
    with open(log, "a") as f:
        f.write(text + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        note(self.requestline)

    def send(self, body, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v2/slow/app/manifests/v1":
            return self.send(manifest, "application/vnd.oci.image.manifest.v1+json")
        if self.path == "/v2/slow/app/blobs/" + config_digest:
            return self.send(config, "application/octet-stream")
        if self.path == "/v2/slow/app/blobs/" + layer_digest:
            note("blob started")
            self.send_response(200)
            self.send_header("Content-Length", str(LAYER_SIZE))
            self.end_headers()
            try:
                for _ in range(LAYER_SIZE // 1024):
                    self.wfile.write(b"\0" * 1024)
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                note("blob aborted by the client")
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
