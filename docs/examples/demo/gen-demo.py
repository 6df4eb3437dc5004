#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the demo world: an apig-sim seed (world.json.in) and the certbind
desired-state file that goes with it (bindings.yaml.in).

Both are templates. scripts/demo.sh fills in, at demo time:
  world.json.in     @SG_AK@ @SG_SK@ @EU_PASSWORD@   fresh random credentials
  bindings.yaml.in  @ENDPOINT@ @CA_FILE@ @SECRETS@ @STATE_DIR@ @LEAF@
                    (@LEAF@: a directory where the demo made the files of
                    status-page with tests/certs/make-leaf-certs.sh)
and, so that the simulator's data plane can serve every certificate of the
seed, makes the key pairs the seed names (pem/NAME.pem, pem/NAME.key next to
the seed: a leaf for the certificate's SANs from the demo's test CA) and
gives each gateway's `ingress` in bindings.yaml the address its listener got.

The world (deterministic: IDs are derived from names):
  sg-prod (ap-southeast-1, AK/SK)       gateways sg-edge-1, sg-edge-2
    star-shop-2026  *.shop.example.com  40 domains on both gateways; half of
                                        them still served by star-shop-2025
                                        (the renewal moves them), plus
                                        legacy.shop.example.com wanted on
                                        sg-edge-2, where it is not registered:
                                        404 APIG.3020, the one failure
    star-api        *.api.example.com   50 domains on both gateways, 60 % in
                                        place; 5 mtls-* domains want client
                                        verification on (2 bound with it off)
  eu-prod (eu-west-101, IAM password)   gateways eu-edge-1, eu-edge-2
    star-eu         *.eu.example.com    60 domains on both gateways, 30 % in
                                        place
    partner-portal  *.partner.example.com 10 domains on eu-edge-1
    status-page     status.example.com, www.status.example.com on
                    eu-edge-1: a certificate from files (cert_file + key),
                    uploaded by certbind

Usage: gen-demo.py [OUTDIR]   (default: the directory of this script)
"""
import hashlib
import json
import os
import sys


def hex32(*parts):
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def uuid_of(*parts):
    h = hex32(*parts)
    return "-".join([h[:8], h[8:12], h[12:16], h[16:20], h[20:32]])


ACCOUNTS = {
    "sg-prod": {"region": "ap-southeast-1", "auth": "aksk"},
    "eu-prod": {"region": "eu-west-101", "auth": "password"},
}
GATEWAYS = {  # name -> (account, instance_id); APIG uses both ID shapes
    "sg-edge-1": ("sg-prod", uuid_of("demo-gw", "sg-edge-1")),
    "sg-edge-2": ("sg-prod", hex32("demo-gw", "sg-edge-2")),
    "eu-edge-1": ("eu-prod", uuid_of("demo-gw", "eu-edge-1")),
    "eu-edge-2": ("eu-prod", hex32("demo-gw", "eu-edge-2")),
}
FAILING = "legacy.shop.example.com"


MANAGED = "status-page"  # the certificate given as files


def project_id(account):
    return hex32("demo-project", account)


def cert_id(name):
    return hex32("demo-cert", name)


def build():
    certs = {}  # name -> (account, [san])
    wanted = []  # (cert, [gateways], [domains], verify or None)
    bound = []  # (cert, gateway, domain, verify)
    registered = {g: [] for g in GATEWAYS}  # domains on each gateway's groups

    def register(gws, domains):
        for g in gws:
            registered[g] += [d for d in domains if d not in registered[g]]

    sg = ["sg-edge-1", "sg-edge-2"]
    eu = ["eu-edge-1", "eu-edge-2"]

    # A certificate renewal: 2025 -> 2026, half the domains still on 2025.
    certs["star-shop-2025"] = ("sg-prod", ["*.shop.example.com"])
    certs["star-shop-2026"] = ("sg-prod", ["*.shop.example.com"])
    shop = ["%s.shop.example.com" % n for n in
            ["www", "m", "checkout", "cart", "search", "img", "static", "cdn",
             "account", "help"]]
    shop += ["store%02d.shop.example.com" % i for i in range(1, 31)]
    register(sg, shop)
    register(["sg-edge-1"], [FAILING])  # registered on sg-edge-1 only
    wanted.append(("star-shop-2026", sg, shop, None))
    wanted.append(("star-shop-2026", ["sg-edge-2"], [FAILING], None))
    for i, d in enumerate(shop):
        if i % 2 == 0:
            for g in sg:
                bound.append(("star-shop-2025", g, d, False))
    bound.append(("star-shop-2025", "sg-edge-1", FAILING, False))

    # An API fleet, mostly in place; mutual TLS on a few domains.
    certs["star-api"] = ("sg-prod", ["*.api.example.com"])
    api = ["v%d-%s.api.example.com" % (v, s) for v in (1, 2, 3)
           for s in ["orders", "users", "billing", "search", "catalog",
                     "inventory", "payments", "reports", "auth", "events",
                     "files", "notify", "geo", "pricing", "reviews"]]
    api = api[:45]
    mtls = ["mtls-%s.api.example.com" % s
            for s in ["bank", "partner", "ops", "audit", "settle"]]
    register(sg, api + mtls)
    wanted.append(("star-api", sg, api, None))
    wanted.append(("star-api", sg, mtls, True))
    for i, d in enumerate(api):
        if i % 5 < 3:  # 60 %
            for g in sg:
                bound.append(("star-api", g, d, False))
    for d in mtls[:2]:  # bound, but client verification is off: a change
        bound.append(("star-api", "sg-edge-1", d, False))
        bound.append(("star-api", "sg-edge-2", d, True))

    # Europe: IAM password auth, another project.
    certs["star-eu"] = ("eu-prod", ["*.eu.example.com"])
    euds = ["%s.eu.example.com" % n for n in
            ["www", "api", "shop", "pay", "login", "static", "img", "help",
             "status", "docs"]]
    euds += ["%s%02d.eu.example.com" % (c, i) for c in ("de", "fr", "nl",
                                                        "es", "it")
             for i in range(1, 11)]
    register(eu, euds)
    wanted.append(("star-eu", eu, euds, None))
    for i, d in enumerate(euds):
        if i % 10 < 3:  # 30 %
            for g in eu:
                bound.append(("star-eu", g, d, False))

    certs["partner-portal"] = ("eu-prod", ["*.partner.example.com"])
    partner = ["p%02d.partner.example.com" % i for i in range(1, 11)]
    register(["eu-edge-1"], partner)
    wanted.append(("partner-portal", ["eu-edge-1"], partner, None))

    # A certificate from files: not in the seed, certbind uploads it.
    status = ["status.example.com", "www.status.example.com"]
    register(["eu-edge-1"], status)
    wanted.append(("status-page", ["eu-edge-1"], status, None))

    # A binding made by hand, not in the file: upsert never touches it.
    register(["eu-edge-2"], ["legacy.eu.example.com"])
    bound.append(("star-eu", "eu-edge-2", "legacy.eu.example.com", False))
    return certs, wanted, bound, registered


def seed(certs, bound, registered):
    projects = []
    for name, a in ACCOUNTS.items():
        p = {"id": project_id(name), "region": a["region"]}
        if a["auth"] == "aksk":
            p["credentials"] = [{"ak": "@SG_AK@", "sk": "@SG_SK@"}]
            p["users"] = []
        else:
            p["credentials"] = []
            p["users"] = [{"domain": "acme-eu", "name": "certbind-deployer",
                           "password": "@EU_PASSWORD@"}]
        projects.append(p)
    return {
        "projects": projects,
        "gateways": [{"instance_id": iid, "project": project_id(acct),
                      "domains": registered[g]}
                     for g, (acct, iid) in GATEWAYS.items()],
        # the key pairs scripts/demo.sh makes (paths relative to the seed)
        "certificates": [{"id": cert_id(c), "project": project_id(acct),
                          "name": c.replace("-", "_"), "san": san,
                          "cert_file": "pem/%s.pem" % c,
                          "key_file": "pem/%s.key" % c}
                         for c, (acct, san) in certs.items()],
        "bindings": [{"certificate": cert_id(c),
                      "instance_id": GATEWAYS[g][1], "domain": d,
                      "verified_client_certificate_enabled": v}
                     for c, g, d, v in bound],
        # Real APIG takes 5-10 s to show a write; 1 s keeps the demo short.
        "settings": {"visibility_delay_ms": 1000},
        "faults": {"latency": {"kind": "uniform", "min_ms": 10,
                               "max_ms": 30}},
    }


def yaml(certs, wanted):
    out = [
        "# certbind demo: the desired state of two accounts, four gateways",
        "# and five certificates (%d bindings)." % sum(
            len(g) * len(d) for _, g, d, _ in wanted),
        "# Generated by gen-demo.py; scripts/demo.sh fills in the @...@ parts.",
        "version: 1",
        "accounts:",
        "  sg-prod:",
        "    region: ap-southeast-1",
        "    project_id: %s" % project_id("sg-prod"),
        "    endpoint: @ENDPOINT@           # the simulator",
        "    auth:",
        "      method: aksk",
        "      access_key: { file: @SECRETS@/sg-ak }",
        "      secret_key: { file: @SECRETS@/sg-sk }",
        "    tls: { ca_file: @CA_FILE@ }",
        "    limits: { requests_per_second: 10, burst: 10, max_in_flight: 16 }",
        "  eu-prod:",
        "    region: eu-west-101",
        "    project_id: %s" % project_id("eu-prod"),
        "    endpoint: @ENDPOINT@",
        "    auth:",
        "      method: password",
        "      iam_endpoint: @ENDPOINT@",
        "      domain: acme-eu",
        "      user: certbind-deployer",
        "      password: { file: @SECRETS@/eu-password }",
        "    tls: { ca_file: @CA_FILE@ }",
        "    limits: { requests_per_second: 10, burst: 10, max_in_flight: 16 }",
        "gateways:",
    ]
    for g, (acct, iid) in GATEWAYS.items():
        out.append("  %s: { account: %s, instance_id: %s }" % (g, acct, iid))
    out.append("certificates:")
    for c, (acct, _) in certs.items():
        if any(w[0] == c for w in wanted):
            out.append("  %s: { account: %s, id: %s }" % (c, acct, cert_id(c)))
        elif c == "star-shop-2025":
            # Bound to nothing, but named: plan then shows the renewal's
            # attaches as moves that name the certificate they leave.
            out.append("  %s: { account: %s, id: %s }   # last year's: "
                       "named so that plan shows what each move leaves"
                       % (c, acct, cert_id(c)))
    out.append("  %s: { account: eu-prod, cert_file: @LEAF@/rsa.chain.pem, "
               "key: { file: @LEAF@/rsa.key } }   # from files: certbind "
               "uploads it" % MANAGED)
    out.append("bindings:")
    for c, gws, domains, verify in wanted:
        out.append("  - certificate: %s" % c)
        out.append("    gateways: [%s]" % ", ".join(gws))
        out.append("    domains:")
        out += ["      - %s" % d for d in domains]
        if verify is not None:
            out.append("    verify_client: %s" % ("true" if verify else "false"))
    out += [
        "policy:",
        "  mode: upsert",
        "  batch_size: 20",
        "  confirm_timeout_s: 30",
        "retry: { max_attempts: 4, base_delay_ms: 200, max_delay_ms: 2000 }",
        "daemon:",
        "  state_dir: @STATE_DIR@",
    ]
    return "\n".join(out) + "\n"


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.abspath(__file__))
    certs, wanted, bound, registered = build()
    with open(os.path.join(outdir, "world.json.in"), "w") as f:
        json.dump(seed(certs, bound, registered), f, indent=1)
        f.write("\n")
    with open(os.path.join(outdir, "bindings.yaml.in"), "w") as f:
        f.write(yaml(certs, wanted))


if __name__ == "__main__":
    main()
