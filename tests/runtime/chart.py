"""Renders the published chart a rendered tree installs, as Flux or Argo CD would, and prints
its objects as JSON (one list) on stdout. Used by tests/runtime.rs; needs a Python with
helm-python-sdk (Helm's own engine: the templates render as `helm template` renders them) and
PyYAML, i.e. the tests' venv that scripts/test-env makes.

  chart.py OUT CHART CHARTS_DIR [--set-null KEY.PATH ...]

OUT is the rendered tree; CHART the chart's name (`airflow`, `jupyterhub`); CHARTS_DIR holds the
published archives (`<chart>-<version>.tgz`). The values are the release's: its `valuesFrom`
Secrets of the tree, then its inline `values`, merged as Flux merges them (maps deeply, the rest
replaced). `--set-null` removes a value before rendering (the chart's default applies), for the
tests that show a check fails without mlplat's setting. Errors go to stderr, exit status 1.
"""

import argparse
import base64
import json
import os
import sys

import helm_python
import yaml


def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a.get(k), v) if k in a else v
        return out
    return b


def load_tree(out):
    docs = []
    for root, _, files in os.walk(out):
        for name in sorted(files):
            if name.endswith(".yaml") and name not in ("values.yaml", "kustomization.yaml"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    docs += [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    return docs


def secret_data(obj):
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data


def release(docs, chart):
    """(values, release name, namespace, version) of the release of `chart` in the tree."""
    secrets = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d.get("kind") == "Secret"}
    for d in docs:
        if d.get("kind") == "HelmRelease" and d["spec"]["chart"]["spec"]["chart"] == chart:
            ns, spec = d["metadata"].get("namespace"), d["spec"]
            values = {}
            for vf in spec.get("valuesFrom") or []:
                text = secret_data(secrets[(ns, vf["name"])])[vf.get("valuesKey", "values.yaml")]
                values = merge(values, yaml.safe_load(text) or {})
            values = merge(values, spec.get("values") or {})
            name = spec.get("releaseName", d["metadata"]["name"])
            return values, name, spec.get("targetNamespace", ns), spec["chart"]["spec"]["version"]
        if d.get("kind") == "Application" and d["spec"].get("source", {}).get("chart") == chart:
            s = d["spec"]["source"]
            h = s.get("helm") or {}
            return h.get("valuesObject") or {}, h.get("releaseName", chart), d["spec"]["destination"]["namespace"], s["targetRevision"]
    sys.exit(f"chart.py: the tree installs no {chart} chart (no HelmRelease or Application for it)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("chart")
    p.add_argument("charts")
    p.add_argument("--set-null", action="append", default=[])
    args = p.parse_args()
    values, name, namespace, version = release(load_tree(args.out), args.chart)
    for path in args.set_null:
        *parents, last = path.split(".")
        node = values
        for key in parents:
            node = node.get(key) or {}
        node.pop(last, None)
    archive = os.path.join(args.charts, f"{args.chart}-{version}.tgz")
    if not os.path.exists(archive):
        sys.exit(f"chart.py: {archive} is missing: `helm pull` {args.chart} version {version} into {args.charts}")
    rendered = helm_python.Chart.load(archive).render(values, name=name, namespace=namespace, is_install=True)
    objs = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            objs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    for o in objs:
        o.setdefault("metadata", {}).setdefault("namespace", namespace)
    json.dump(objs, sys.stdout)


if __name__ == "__main__":
    main()
