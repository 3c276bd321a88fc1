#!/usr/bin/env python3
# oci-with-healthcheck.py ROOTFS OUTDIR HEALTHCHECK_JSON [CMD_JSON]: an OCI layout in OUTDIR, an
# image of ROOTFS (one uncompressed layer) whose config carries HEALTHCHECK_JSON as its
# config.Healthcheck (Docker's shape: {"Test": [...], "Interval": ns, ...}; "null" for none) and
# CMD_JSON as its Cmd. For the health tests: an image's HEALTHCHECK reaches the supervisor.
import hashlib, io, json, os, sys, tarfile

rootfs, out, healthcheck = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cmd = json.loads(sys.argv[4]) if len(sys.argv) > 4 else ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]

def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for name in sorted(os.listdir(rootfs)):
        tar.add(os.path.join(rootfs, name), arcname=name)
layer = buf.getvalue()
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
if healthcheck is not None:
    config["config"]["Healthcheck"] = healthcheck
layer_desc = blob(layer)
config_desc = blob(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": dict(config_desc, mediaType="application/vnd.oci.image.config.v1+json"),
            "layers": [dict(layer_desc, mediaType="application/vnd.oci.image.layer.v1.tar")]}
manifest_desc = blob(json.dumps(manifest).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2,
               "manifests": [dict(manifest_desc, mediaType="application/vnd.oci.image.manifest.v1+json")]}, f)
