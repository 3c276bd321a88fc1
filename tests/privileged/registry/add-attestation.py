#!/usr/bin/env python3
"""add-attestation.py HOST REPO TAG: adds a provenance attestation to the index HOST/REPO:TAG, as
`docker buildx build --provenance` lays it out, and PUTs the index back under the same tag.

buildah 1.28 (Debian 12) cannot make attestations, so the test takes the index `buildah manifest
push --all` produced and adds what buildx would have: an OCI image manifest whose config is an
empty-ish OCI config and whose one layer is an in-toto statement (application/vnd.in-toto+json),
listed in the index with platform unknown/unknown and the annotations
vnd.docker.reference.type=attestation-manifest and vnd.docker.reference.digest=<the image it is
about>. It is listed first, so a client that took the first entry would pick it. Prints the new
index's digest. Plain HTTP only (the test registry is declared insecure).
"""
import hashlib
import json
import sys
import urllib.request

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status, dict(r.headers), r.read()


def upload_blob(base, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = request("POST", base + "/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = base.split("/v2/")[0] + location
    sep = "&" if "?" in location else "?"
    request("PUT", location + sep + "digest=" + digest, data,
            {"Content-Type": "application/octet-stream"})
    return digest, len(data)


def main():
    host, repo, tag = sys.argv[1:4]
    base = "http://%s/v2/%s" % (host, repo)
    _, headers, raw = request("GET", base + "/manifests/" + tag, headers={"Accept": ", ".join(INDEX_TYPES)})
    index = json.loads(raw)
    if index.get("mediaType") not in INDEX_TYPES:
        sys.exit("add-attestation: %s/%s:%s is not an index (%s)" % (host, repo, tag, index.get("mediaType")))
    subject = next(m for m in index["manifests"] if m.get("platform", {}).get("architecture") == "amd64")
    statement = json.dumps({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "%s/%s:%s" % (host, repo, tag),
                     "digest": {"sha256": subject["digest"].split(":", 1)[1]}}],
        "predicate": {"builder": {"id": "berth-test"}},
    }).encode()
    layer_digest, layer_size = upload_blob(base, statement)
    config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest, config_size = upload_blob(base, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer_digest, "size": layer_size,
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
    }).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    request("PUT", base + "/manifests/" + manifest_digest, manifest,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
             "size": len(manifest), "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": subject["digest"]}}
    index["manifests"].insert(0, entry)
    # An OCI index from here on (buildx pushes OCI indexes when it adds attestations).
    index["mediaType"] = "application/vnd.oci.image.index.v1+json"
    body = json.dumps(index).encode()
    request("PUT", base + "/manifests/" + tag, body, {"Content-Type": index["mediaType"]})
    print("sha256:" + hashlib.sha256(body).hexdigest())


if __name__ == "__main__":
    main()
