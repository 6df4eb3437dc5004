#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate an apig-sim seed world: N certificates x M domains x K gateways.

Certificate i covers "*.c<i>.<base>" and owns the M domains
"d<j>.c<i>.<base>"; every gateway registers every domain on its API groups,
so any (certificate, gateway, domain) binding of the world is attachable.
A fraction of the bindings can be pre-bound. IDs are derived from the names
(deterministic): project/certificate IDs are 32 hex characters, instance
IDs alternate between dashed UUIDs and 32-hex strings like the real API.

With --pem-dir DIR every certificate gets a real key pair, so that the
data plane can serve it: an ECDSA P-256 key and a leaf for "*.c<i>.<base>"
issued by ONE test CA (--ca-dir, default DIR; made there with
tests/certs/make-certs.sh when ca.pem is missing), written as
DIR/cert_<i>.pem and DIR/cert_<i>.key (0600) and named in the seed by
cert_file/key_file. One openssl process per certificate: about 10-20 ms
each, so fine for tens or hundreds, not for thousands. --ingress ADDR
gives every gateway a data-plane listener (e.g. 127.0.0.1:0).

Example:
  gen-world.py --certs 100 --domains 10 --gateways 4 --bound 0.5 -o world.json
  gen-world.py --certs 5 --domains 3 --gateways 2 --bound 1 \
      --pem-dir /tmp/w --ingress 127.0.0.1:0 -o /tmp/w/world.json
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CERTS = os.path.join(HERE, "..", "..", "tests", "certs", "make-certs.sh")


def hex32(*parts):
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def instance_id(i):
    h = hex32("gateway", str(i))
    if i % 2:
        return h
    return "-".join([h[:8], h[8:12], h[12:16], h[16:20], h[20:32]])


def make_key_pair(a, i, zone):
    """A P-256 key and a leaf for *.zone from the test CA: one openssl call."""
    base = os.path.join(os.path.abspath(a.pem_dir), "cert_%d" % i)
    ca = os.path.abspath(a.ca_dir or a.pem_dir)
    name = "*." + zone
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", base + ".key",
         "-out", base + ".pem", "-days", "30", "-subj", "/CN=" + name,
         "-CA", os.path.join(ca, "ca.pem"), "-CAkey", os.path.join(ca, "ca.key"),
         "-addext", "subjectAltName=DNS:" + name,
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-addext", "extendedKeyUsage=serverAuth"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(base + ".pem", 0o644)
    return {"cert_file": base + ".pem", "key_file": base + ".key"}


def prepare_pem_dir(a):
    os.makedirs(a.pem_dir, exist_ok=True)
    ca = a.ca_dir or a.pem_dir
    if not os.path.exists(os.path.join(ca, "ca.pem")):
        subprocess.run(["sh", MAKE_CERTS, ca], check=True)


def build(a):
    project = a.project_id or hex32("project", a.region)
    rnd = random.Random(a.seed)
    gateways = [instance_id(i) for i in range(a.gateways)]
    certs, domains_of = [], {}
    for i in range(a.certs):
        cid = hex32("certificate", str(i))
        zone = "c%d.%s" % (i, a.base)
        domains_of[cid] = ["d%d.%s" % (j, zone) for j in range(a.domains)]
        cert = {"id": cid, "project": project, "name": "cert_%d" % i,
                "san": ["*." + zone]}
        if a.pem_dir:
            cert.update(make_key_pair(a, i, zone))
        certs.append(cert)
    all_domains = [d for c in certs for d in domains_of[c["id"]]]
    bindings = []
    for c in certs:
        for d in domains_of[c["id"]]:
            for g in gateways:
                if rnd.random() < a.bound:
                    bindings.append({
                        "certificate": c["id"], "instance_id": g,
                        "domain": d,
                        "verified_client_certificate_enabled": False})
    world = {
        "projects": [{
            "id": project, "region": a.region,
            "credentials": [{"ak": a.ak, "sk": a.sk}],
            "users": [{"domain": a.user_domain, "name": a.user,
                       "password": a.password}],
        }],
        "gateways": [dict({"instance_id": g, "project": project,
                           "domains": all_domains},
                          **({"ingress": [a.ingress]} if a.ingress else {}))
                     for g in gateways],
        "certificates": certs,
        "bindings": bindings,
        "settings": {"visibility_delay_ms": a.visibility_delay_ms},
    }
    return world


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--certs", type=int, default=10, help="N certificates")
    p.add_argument("--domains", type=int, default=10,
                   help="M domains per certificate")
    p.add_argument("--gateways", type=int, default=2, help="K gateways")
    p.add_argument("--bound", type=float, default=0.0,
                   help="fraction of (cert, gateway, domain) pre-bound")
    p.add_argument("--base", default="example.com", help="base domain")
    p.add_argument("--region", default="cn-north-4")
    p.add_argument("--project-id", default=None,
                   help="32 alnum (default: derived from the region)")
    p.add_argument("--ak", default="AccessKey")
    p.add_argument("--sk", default="SecretKey")
    p.add_argument("--user-domain", default="acme")
    p.add_argument("--user", default="deployer")
    p.add_argument("--password", default="correct horse")
    p.add_argument("--visibility-delay-ms", type=int, default=0)
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--pem-dir", default=None,
                   help="write a key pair per certificate here")
    p.add_argument("--ca-dir", default=None,
                   help="the test CA (ca.pem, ca.key); default --pem-dir")
    p.add_argument("--ingress", default=None,
                   help="data-plane address of every gateway, e.g. "
                        "127.0.0.1:0")
    p.add_argument("-o", "--output", default="-", help="file or - (stdout)")
    a = p.parse_args()
    if min(a.certs, a.domains, a.gateways) < 0 or not 0 <= a.bound <= 1:
        p.error("counts must be >= 0 and --bound in [0, 1]")
    if a.pem_dir:
        umask = os.umask(0o077)  # the keys are 0600
        prepare_pem_dir(a)
    world = build(a)
    if a.pem_dir:
        os.umask(umask)
    out = sys.stdout if a.output == "-" else open(a.output, "w")
    json.dump(world, out, separators=(",", ":"))
    out.write("\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
