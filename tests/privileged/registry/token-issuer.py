#!/usr/bin/env python3
# A token issuer for the registry fixture, following the distribution token specification
# (docs/spec/auth/token.md, jwt.md): GET /token?service=S&scope=repository:NAME:ACTIONS with HTTP
# Basic credentials answers {"token": JWT, "expires_in": N, "issued_at": ...}; the JWT is RS256,
# signed with KEY, its certificate CERT in the header's x5c chain (the registry trusts it through
# its rootcertbundle). Users (user:password:actions): berth:s3cret-pw may pull and push;
# reader:read-pw may only pull; anonymous requests and wrong passwords get 401. The actions granted
# are those asked for that the user holds (the spec's intersection). Only the stdlib and the
# `openssl` CLI (signing), so CI needs no python module.
# Usage: token-issuer.py PORT KEY CERT LOG [EXPIRES_IN [FIELD]]   (FIELD: token or access_token)
import base64, http.server, json, subprocess, sys, time, urllib.parse, uuid

port, key, cert, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
expires_in = int(sys.argv[5]) if len(sys.argv) > 5 else 300
field = sys.argv[6] if len(sys.argv) > 6 else "token"
USERS = {"berth": ("s3cret-pw", {"pull", "push"}), "reader": ("read-pw", {"pull"})}
ISSUER, SERVICE = "berth-test-issuer", "berth-test-registry"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


with open(cert) as f:
    pem = "".join(line.strip() for line in f if "-----" not in line)
cert_der_b64 = pem  # x5c: standard base64 of the DER certificate (the PEM body)


def note(text):
    with open(log, "a") as f:
        f.write(text + "\n")


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der_b64]}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                         capture_output=True, check=True).stdout
    return signing_input + "." + b64(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if name in USERS and USERS[name][0] == password:
                user = name
        scopes = q.get("scope", [])
        note(f"token user={user or '-'} scope={' '.join(scopes) or '-'} "
             f"auth={'basic' if auth.startswith('Basic ') else 'none'}")
        if url.path != "/token" or q.get("service", [""])[0] != SERVICE:
            return self.reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "unknown service"}]})
        if user is None:
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]})
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = sorted(set(actions.split(",")) & USERS[user][1])
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + expires_in, "nbf": now - 5,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        self.reply(200, {field: sign(claims), "expires_in": expires_in,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
