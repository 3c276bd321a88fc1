#!/usr/bin/env python3
# oci-with-workdir.py ROOTFS OUTDIR WORKDIR...: one OCI layout per WORKDIR, OUTDIR/0, OUTDIR/1, ...
# each an image of ROOTFS (one uncompressed layer, shared) whose config's WorkingDir is that
# WORKDIR. For the escape test: an image's WorkingDir reaches the runtime like a declaration's
# workdir and must be refused the same way.
import hashlib, io, json, os, sys, tarfile

rootfs, out, workdirs = sys.argv[1], sys.argv[2], sys.argv[3:]

def blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for name in sorted(os.listdir(rootfs)):
        tar.add(os.path.join(rootfs, name), arcname=name)
layer = buf.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()

for i, workdir in enumerate(workdirs):
    layout = os.path.join(out, str(i))
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    layer_desc = blob(layout, layer)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["/bin/sh", "-c", "pwd"], "WorkingDir": workdir},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_desc = blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(config_desc, mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": [dict(layer_desc, mediaType="application/vnd.oci.image.layer.v1.tar")]}
    manifest_desc = blob(layout, json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [dict(manifest_desc, mediaType="application/vnd.oci.image.manifest.v1+json")]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
