#!/usr/bin/env python3
"""Writes schema.rs, knet's table of Kubernetes protobuf messages, from Kubernetes' own schema.

Usage: gen_schema.py API_REPO APIMACHINERY_REPO > schema.rs
(the two arguments are checkouts of github.com/kubernetes/api and github.com/kubernetes/apimachinery).
It reads each package's generated.proto (field numbers, names, types) and types.go (whether a Go field is a
pointer, so that a present zero value is kept in JSON) and emits the transitive closure of ROOTS.
"""
import os
import re
import sys

API, MACH = sys.argv[1], sys.argv[2]
PKGS = {
    "k8s.io.api.core.v1": f"{API}/core/v1",
    "k8s.io.api.apps.v1": f"{API}/apps/v1",
    "k8s.io.api.networking.v1": f"{API}/networking/v1",
    "k8s.io.api.discovery.v1": f"{API}/discovery/v1",
    "k8s.io.api.coordination.v1": f"{API}/coordination/v1",
    "k8s.io.api.autoscaling.v1": f"{API}/autoscaling/v1",
    "k8s.io.api.authentication.v1": f"{API}/authentication/v1",
    "k8s.io.apimachinery.pkg.apis.meta.v1": f"{MACH}/pkg/apis/meta/v1",
    "k8s.io.apimachinery.pkg.runtime": f"{MACH}/pkg/runtime",
    "k8s.io.apimachinery.pkg.util.intstr": f"{MACH}/pkg/util/intstr",
    "k8s.io.apimachinery.pkg.api.resource": f"{MACH}/pkg/api/resource",
}
ROOTS = [f"k8s.io.api.core.v1.{k}" for k in
         "Namespace Pod Service Endpoints Node Secret ConfigMap ServiceAccount Event ReplicationController Binding".split()]
ROOTS += ["k8s.io.api.apps.v1.Deployment", "k8s.io.api.apps.v1.ReplicaSet",
          "k8s.io.api.discovery.v1.EndpointSlice", "k8s.io.api.networking.v1.NetworkPolicy",
          "k8s.io.api.networking.v1.Ingress", "k8s.io.api.networking.v1.IngressClass",
          "k8s.io.api.coordination.v1.Lease", "k8s.io.api.autoscaling.v1.Scale",
          "k8s.io.api.authentication.v1.TokenRequest",
          "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
}
SCALARS = {"string": "Str", "bool": "Bool", "int32": "I32", "int64": "I64", "double": "F64", "bytes": "Bytes"}

messages = {}
pointers = set()  # (package, go-struct name, json name)
inline = set()  # the same, for embedded structs
for pkg, d in PKGS.items():
    src = open(os.path.join(d, "generated.proto")).read()
    for m in re.finditer(r"^message (\w+) \{(.*?)^\}", src, re.S | re.M):
        fields = []
        for f in re.finditer(r"^\s*(optional|repeated|map<(\w+),\s*([\w.]+)>)\s*([\w.]*)\s+(\w+) = (\d+);", m.group(2), re.M):
            if f.group(2):
                assert f.group(2) == "string", f.group(0)
                fields.append(("map", f.group(3), f.group(5), int(f.group(6))))
            else:
                fields.append((f.group(1), f.group(4), f.group(5), int(f.group(6))))
        messages[f"{pkg}.{m.group(1)}"] = (pkg, m.group(1), fields)
    for name in os.listdir(d):
        if not name.endswith(".go") or name.endswith("_test.go") or name.startswith("zz_") or name.startswith("generated"):
            continue
        go = open(os.path.join(d, name)).read()
        for s in re.finditer(r"^type (\w+) struct \{(.*?)^\}", go, re.S | re.M):
            for line in s.group(2).splitlines():
                t = re.match(r"\s*\w+\s+(\S+)\s+`.*protobuf:\"[^\"]*name=(\w+)", line)
                if t and t.group(1).startswith("*"):
                    pointers.add((pkg, s.group(1), t.group(2)))
                # An embedded struct with no JSON name: its fields appear inline in the parent's JSON.
                e = re.match(r"\s*\*?[\w.]+\s+`json:\"(,[^\"]*)?\".*protobuf:\"[^\"]*name=(\w+)", line)
                if e:
                    inline.add((pkg, s.group(1), e.group(2)))


def resolve(pkg, t):
    if t in SCALARS:
        return t
    t = t.lstrip(".")
    full = t if t.startswith("k8s.io.") else f"{pkg}.{t}"
    assert full in messages or full in SPECIAL, full
    return full


out, todo, seen = [], list(ROOTS), set()
while todo:
    name = todo.pop(0)
    if name in seen or name in SPECIAL:
        continue
    seen.add(name)
    pkg, short, fields = messages[name]
    rows = []
    for label, t, fname, num in fields:
        r = resolve(pkg, t)
        if r in SCALARS:
            kind = SCALARS[r]
        elif r in SPECIAL:
            kind = SPECIAL[r]
        else:
            kind = f'Msg("{r}")'
            todo.append(r)
        card = {"repeated": "Repeated", "map": "Map"}.get(label, "Ptr" if (pkg, short, fname) in pointers else "Opt")
        if (pkg, short, fname) in inline:
            assert kind.startswith("Msg") and label == "optional", (name, fname)
            card = "Inline"
        rows.append(f'        f({num}, "{fname}", {kind}, {card}),')
    out.append((name, rows))

out.sort()
print("//! Generated by gen_schema.py from Kubernetes' generated.proto and types.go files: for every message knet")
print("//! decodes, each field's number, JSON name, wire kind and cardinality. Do not edit by hand.")
print()
print("use super::decode::{f, Card::*, Kind::*, Message};")
print()
print("/// The messages, sorted by full protobuf name.")
print("pub static MESSAGES: &[Message] = &[")
for name, rows in out:
    print(f'    Message {{\n        name: "{name}",\n        fields: &[')
    print("\n".join("    " + r for r in rows))
    print("        ],\n    },")
print("];")
