#!/usr/bin/env python3
# A hostile registry for the pull tests (issue #17): python3's http.server, no dependencies. One
# small valid image (one gzip layer of 2 MiB, a config, a manifest), served under every repository
# name; the repository decides how the registry misbehaves:
#   good/app          a well-behaved registry (Range honoured)
#   resume/range      each blob GET without Range is reset (RST) halfway; a Range GET gets a 206
#   resume/norange    a layer GET without Range is reset halfway; one with Range gets a 200 (all of it)
#   bad/truncated     every layer GET is reset after 64 KiB, Range or not (200 from the start)
#   bad/digest        the layer's bytes differ from its digest (same size)
#   bad/size          the layer sends 100 bytes more than its descriptor says
#   bad/bigmanifest   a 5 MiB manifest (the limit is 4 MiB)
#   bad/redirect      the manifest redirects to itself, forever
#   bad/auth          401 with a Bearer challenge forever, although the token service answers
#   bad/trickle       the layer trickles 64 bytes every 0.5 s (below any low-speed limit)
#   bad/bomb          a gzip layer of 320 KiB that expands to a tar of 256 MiB of zeros
#   bad/schema1       a Docker schema 1 manifest
#   bad/mediatype     a manifest of an unknown media type
#   bad/layertype     a manifest whose layer has an unknown media type
#   bad/platform      an index offering linux/s390x and linux/ppc64le only
#   slow/manifest     the manifest answer waits until the file GATE exists (kill -9 tests)
#   slow/blob         the layer sends half, then waits until GATE exists, then the rest
# Every request is logged to LOG as "SECONDS METHOD PATH range=<Range header or ->"; "blob waiting" and
# "manifest waiting" when a slow answer starts to wait.
# The digests the tests look for are written to DIGESTS (JSON): "layer", "bomb", "manifest:<repo>".
# Usage: hostile-registry.py PORT LOG GATE DIGESTS
import gzip, hashlib, http.server, io, json, os, socket, struct, sys, tarfile, time, zlib

port, log, gate, digests = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Random bytes do not compress: the layer is as big on the wire as on disk (resume needs a body).
rnd = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(65536))  # 2 MiB
layer_tar = make_tar([("data/random", rnd), ("data/hello", b"hello from the hostile registry\n")])
layer = gzip.compress(layer_tar, compresslevel=1, mtime=0)


def image(layers, diff_ids, layer_type=GZIP_LAYER, sizes=None):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": layer_type, "digest": sha(l),
                                       "size": (sizes or {}).get(i, len(l))}
                                      for i, l in enumerate(layers)]}).encode()
    return config, manifest


# A gzip bomb without compressing 256 MiB here: after a sync flush every further MiB of zeros
# deflates to the same bytes, so one such block is repeated; the trailer is computed honestly.
def make_bomb(mib):
    header = tarfile.TarInfo("zeros")
    header.size, header.mode, header.mtime = mib << 20, 0o644, 0
    head = header.tobuf(format=tarfile.USTAR_FORMAT)
    zero = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [c.compress(head) + c.flush(zlib.Z_SYNC_FLUSH)]
    first = c.compress(zero) + c.flush(zlib.Z_SYNC_FLUSH)
    block = c.compress(zero) + c.flush(zlib.Z_SYNC_FLUSH)
    out += [first] + [block] * (mib - 1)
    out.append(c.compress(bytes(1024)) + c.flush(zlib.Z_FINISH))  # end-of-archive blocks
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(bytes(1024), crc)
    total = len(head) + (mib << 20) + 1024
    gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"".join(out)
    return gz + struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF)


bomb = make_bomb(256)
mid = len(layer) // 2
bad_layer = layer[:mid] + bytes([layer[mid] ^ 1]) + layer[mid + 1:]

good_config, good_manifest = image([layer], [sha(layer_tar)])
blobs = {sha(layer): layer, sha(good_config): good_config}
manifests = {}  # repository -> (bytes, content type)
for repo in ("good/app", "resume/range", "resume/norange", "bad/truncated", "bad/trickle",
             "slow/manifest", "slow/blob"):
    manifests[repo] = (good_manifest, OCI_MANIFEST)

c, m = image([bad_layer], [sha(layer_tar)])
blobs[sha(c)] = c
manifests["bad/digest"] = (m.replace(sha(bad_layer).encode(), sha(layer).encode()), OCI_MANIFEST)
c, m = image([layer], [sha(layer_tar)], sizes={0: len(layer) - 100})
blobs[sha(c)] = c
manifests["bad/size"] = (m, OCI_MANIFEST)
c, m = image([bomb], ["sha256:" + "0" * 64])
blobs[sha(c)], blobs[sha(bomb)] = c, bomb
manifests["bad/bomb"] = (m, OCI_MANIFEST)
c, m = image([layer], [sha(layer_tar)], layer_type="application/vnd.example.layer.v1+exe")
blobs[sha(c)] = c
manifests["bad/layertype"] = (m, OCI_MANIFEST)
big = json.loads(good_manifest)
big["annotations"] = {"padding": "x" * (5 << 20)}
manifests["bad/bigmanifest"] = (json.dumps(big).encode(), OCI_MANIFEST)
manifests["bad/schema1"] = (json.dumps({
    "schemaVersion": 1, "name": "bad/schema1", "tag": "v1", "architecture": "amd64",
    "fsLayers": [{"blobSum": sha(layer)}], "history": [{"v1Compatibility": "{}"}]}).encode(),
    "application/vnd.docker.distribution.manifest.v1+prettyjws")
manifests["bad/mediatype"] = (json.dumps({"schemaVersion": 2,
                                          "mediaType": "application/vnd.example.thing.v1+json",
                                          "layers": []}).encode(), "application/vnd.example.thing.v1+json")
manifests["bad/platform"] = (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
    {"mediaType": OCI_MANIFEST, "digest": sha(good_manifest), "size": len(good_manifest),
     "platform": {"os": "linux", "architecture": a}} for a in ("s390x", "ppc64le")]}).encode(), OCI_INDEX)
by_digest = {sha(b): (b, t) for b, t in manifests.values()}


def note(text):
    with open(log, "a") as f:
        f.write("%.3f %s\n" % (time.monotonic(), text))


def wait_for_gate():
    while not os.path.exists(gate):
        time.sleep(0.05)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def reply(self, status, body=b"", ctype="application/octet-stream", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset(self):
        # RST, not FIN: the client sees a connection reset mid-body, as from a broken proxy.
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def send_blob(self, repo, digest, body):
        rng = self.headers.get("Range")
        start = 0
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        honour_range = repo in ("good/app", "resume/range") and start > 0
        if repo == "bad/digest" and digest == sha(layer):
            return self.reply(200, bad_layer)
        if repo == "resume/norange" and digest == sha(layer) and not rng:
            return self.partial(body, len(body) // 2)
        if repo == "resume/range" and digest == sha(layer) and not honour_range:
            return self.partial(body, len(body) // 2)
        if repo == "bad/truncated" and digest == sha(layer):
            return self.partial(body, 64 << 10)
        if repo == "bad/size" and digest == sha(layer):
            return self.reply(200, body)
        if repo == "bad/trickle" and digest == sha(layer):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(0, len(body), 64):
                    self.wfile.write(body[i:i + 64])
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                note("trickle aborted by the client")
            return
        if repo == "slow/blob" and digest == sha(layer):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                note("blob waiting")
                wait_for_gate()
                self.wfile.write(body[len(body) // 2:])
            except OSError:
                note("slow blob aborted by the client")
            return
        if honour_range:
            return self.reply(206, body[start:], headers=[
                ("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))])
        return self.reply(200, body)

    def partial(self, body, n):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:n])
        self.reset()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        note("%s %s range=%s" % (self.command, self.path, self.headers.get("Range", "-")))
        if self.path.startswith("/token"):
            return self.reply(200, b'{"token":"not-good-enough","expires_in":300}', "application/json")
        if self.path == "/v2/" or self.path == "/v2":
            return self.reply(200, b"{}", "application/json")
        if not self.path.startswith("/v2/"):
            return self.reply(404)
        rest = self.path[4:]
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                repo, ref = rest.split(kind, 1)
                break
        else:
            return self.reply(404)
        if repo == "bad/auth":
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}', "application/json",
                              [("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:%d/token",'
                                                    'service="hostile",scope="repository:bad/auth:pull"' % port)])
        if kind == "/manifests/":
            if repo == "bad/redirect":
                return self.reply(307, headers=[("Location", self.path)])
            if repo not in manifests:
                return self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}', "application/json")
            body, ctype = manifests[repo] if not ref.startswith("sha256:") else by_digest.get(ref, (None, None))
            if body is None:
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}',
                                  "application/json")
            if repo == "slow/manifest":
                note("manifest waiting")
                wait_for_gate()
            return self.reply(200, body, ctype, [("Docker-Content-Digest", sha(body))])
        if ref not in blobs:
            return self.reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}', "application/json")
        return self.send_blob(repo, ref, blobs[ref])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up is part of the game


with open(digests + ".tmp", "w") as f:
    json.dump(dict({"layer": sha(layer), "bomb": sha(bomb)},
                   **{"manifest:" + r: sha(b) for r, (b, _) in manifests.items()}), f)
os.rename(digests + ".tmp", digests)
Server(("127.0.0.1", port), Handler).serve_forever()
