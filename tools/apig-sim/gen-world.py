#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate an apig-sim seed world: N certificates x M domains x K gateways.

Certificate i covers "*.c<i>.<base>" and owns the M domains
"d<j>.c<i>.<base>"; every gateway registers every domain on its API groups,
so any (certificate, gateway, domain) binding of the world is attachable.
A fraction of the bindings can be pre-bound. IDs are derived from the names
(deterministic): project/certificate IDs are 32 hex characters, instance
IDs alternate between dashed UUIDs and 32-hex strings like the real API.

Example:
  gen-world.py --certs 100 --domains 10 --gateways 4 --bound 0.5 -o world.json
"""
import argparse
import hashlib
import json
import random
import sys


def hex32(*parts):
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def instance_id(i):
    h = hex32("gateway", str(i))
    if i % 2:
        return h
    return "-".join([h[:8], h[8:12], h[12:16], h[16:20], h[20:32]])


def build(a):
    project = a.project_id or hex32("project", a.region)
    rnd = random.Random(a.seed)
    gateways = [instance_id(i) for i in range(a.gateways)]
    certs, domains_of = [], {}
    for i in range(a.certs):
        cid = hex32("certificate", str(i))
        zone = "c%d.%s" % (i, a.base)
        domains_of[cid] = ["d%d.%s" % (j, zone) for j in range(a.domains)]
        certs.append({"id": cid, "project": project, "name": "cert_%d" % i,
                      "san": ["*." + zone]})
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
        "gateways": [{"instance_id": g, "project": project,
                      "domains": all_domains} for g in gateways],
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
    p.add_argument("-o", "--output", default="-", help="file or - (stdout)")
    a = p.parse_args()
    if min(a.certs, a.domains, a.gateways) < 0 or not 0 <= a.bound <= 1:
        p.error("counts must be >= 0 and --bound in [0, 1]")
    world = build(a)
    out = sys.stdout if a.output == "-" else open(a.output, "w")
    json.dump(world, out, separators=(",", ":"))
    out.write("\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
