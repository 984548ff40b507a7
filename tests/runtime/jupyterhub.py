#!/usr/bin/env python3
"""Runs the JupyterHub that an mlplat output tree installs, as far as it runs outside Kubernetes,
and checks its logins. Used by tests/runtime_jupyterhub.rs; needs a Python with helm-python-sdk
and PyYAML (the tests' venv), and is given the hub's own venv (tests/runtime/jupyterhub.requirements.txt,
the versions z2jh 4.4.0's hub image carries) and configurable-http-proxy (tests/runtime/chp).

What runs is what the cluster would run:
- the chart values the HelmRelease (or Argo CD Application) hands Helm, rendered by Helm's own
  engine (helm-python-sdk) from the published chart archive;
- the hub container's files laid out from its volume mounts (the chart's ConfigMap and Secret,
  mlplat's Secrets), its args and its environment (secretKeyRef resolved from the Secrets);
- the real z2jh jupyterhub_config.py and z2jh.py from that ConfigMap, with one change: their
  fixed directory /usr/local/etc/jupyterhub points into the laid-out tree;
- the proxy container's configurable-http-proxy command, and PostgreSQL from Debian's packages.
In-cluster host names become 127.0.0.1 (command-line overrides of the hub's URLs); KubeSpawner
gets a kubeconfig naming an API server nobody serves (no user server is spawned). Every server
listens on 127.0.0.1 only and is stopped by its process id.

Checks (each printed as `ok` or `FAIL`, then `N passed, N failed`; exit 1 if any failed):
the hub answers through the proxy; it reached its database (its tables, the admins' accounts);
signing up as an admin is refused; the admin logs in with the Secret's password and is an admin;
a wrong password is refused; an admin's password cannot be changed in the hub; a sign-up of an
allowed user waits for an admin's approval; after the Secret changes (a rotation) and the hub
restarts, the new password logs in and the old one does not. With the dummy authenticator: the
admin needs the Secret's password, other users get in with any. No password is ever printed.
"""

import argparse
import base64
import glob
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import helm_python
import yaml

Z2JH_DIR = "/usr/local/etc/jupyterhub"
RESULTS = {"passed": 0, "failed": 0}
SECRETS_SEEN = set()


def say(line):
    """Prints a line with every secret value seen replaced."""
    for s in sorted(SECRETS_SEEN, key=len, reverse=True):
        if len(s) >= 6:
            line = line.replace(s, "[redacted]")
    print(line, flush=True)


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    say(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        r = dict(a)
        for k, v in b.items():
            r[k] = merge(a.get(k), v) if k in a else v
        return r
    return b


# --- the output tree -------------------------------------------------------------------------


def load_tree(out):
    docs = []
    for f in sorted(glob.glob(os.path.join(out, "**", "*.yaml"), recursive=True)):
        with open(f, encoding="utf-8") as fh:
            docs += [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
    return docs


def secret_data(obj):
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    for v in data.values():
        SECRETS_SEEN.add(v.decode(errors="replace"))
    return data


def hub_release(docs, charts):
    """(values, release, namespace, archive) of the JupyterHub chart the tree installs."""
    secrets = {
        (d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d.get("kind") == "Secret"
    }
    for d in docs:
        if d.get("kind") == "HelmRelease" and d["spec"]["chart"]["spec"]["chart"] == "jupyterhub":
            ns, spec = d["metadata"].get("namespace"), d["spec"]
            values = {}
            for vf in spec.get("valuesFrom") or []:
                s = secrets[(ns, vf["name"])]
                values = merge(values, yaml.safe_load(secret_data(s)[vf.get("valuesKey", "values.yaml")]) or {})
            values = merge(values, spec.get("values") or {})
            version = spec["chart"]["spec"]["version"]
            release = spec.get("releaseName", d["metadata"]["name"])
            return values, release, spec.get("targetNamespace", ns), version
        if d.get("kind") == "Application" and d["spec"].get("source", {}).get("chart") == "jupyterhub":
            s = d["spec"]["source"]
            h = s.get("helm") or {}
            return h.get("valuesObject") or {}, h.get("releaseName", "jupyterhub"), d["spec"]["destination"]["namespace"], s["targetRevision"]
    raise SystemExit("the tree installs no JupyterHub chart (no HelmRelease or Application for it)")


def render_chart(values, release, namespace, version, charts):
    archive = os.path.join(charts, f"jupyterhub-{version}.tgz")
    if not os.path.exists(archive):
        raise SystemExit(
            f"{archive} is missing: the test renders the published chart; "
            f"`helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version {version} -d {charts}`"
        )
    rendered = helm_python.Chart.load(archive).render(values, name=release, namespace=namespace, is_install=True)
    objs = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            objs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    for o in objs:
        o["metadata"].setdefault("namespace", namespace)
    return objs


def find(objs, kind, name, namespace):
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace:
            return o
    raise SystemExit(f"no {kind} {namespace}/{name} among the objects")


# --- the hub container, laid out ---------------------------------------------------------------


def lay_out(container, pod_spec, objs, root):
    """Writes each volume mount of the container under root, as the kubelet would."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        vol = volumes[m["name"]]
        if "configMap" in vol:
            src = find(objs, "ConfigMap", vol["configMap"]["name"], container["_ns"])
            files = {k: v.encode() for k, v in (src.get("data") or {}).items()}
        elif "secret" in vol:
            src = find(objs, "Secret", vol["secret"]["secretName"], container["_ns"])
            files = secret_data(src)
        elif "persistentVolumeClaim" in vol or "emptyDir" in vol:
            files = {}  # a volume of its own: an empty directory
        else:
            raise SystemExit(f"volume {m['name']}: only ConfigMap, Secret, PVC and emptyDir volumes are laid out")
        items = (vol.get("configMap") or vol.get("secret") or {}).get("items")
        if items:
            files = {item["path"]: files[item["key"]] for item in items}
        target = root + m["mountPath"]
        if m.get("subPath"):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(files[m["subPath"]])
        else:
            os.makedirs(target, exist_ok=True)
            for name, data in files.items():
                with open(os.path.join(target, name), "wb") as f:
                    f.write(data)
    # The chart's code reads its fixed directory: point it into the tree.
    for name in ("jupyterhub_config.py", "z2jh.py"):
        path = root + Z2JH_DIR + "/" + name
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(Z2JH_DIR, root + Z2JH_DIR))


def container_env(container, objs):
    env = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            s = find(objs, "Secret", ref["name"], container["_ns"])
            env[e["name"]] = secret_data(s)[ref["key"]].decode()
        elif "fieldRef" in e.get("valueFrom", {}):
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[e["name"]] = container["_ns"]
    return env


# --- processes -------------------------------------------------------------------------------


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, name, args, env, log, cwd=None, user=None):
        f = open(log, "ab")
        p = subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, user=user)
        self.procs.append((name, p))
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for _, p in reversed(self.procs):
            self.stop(p)


def wait_for(url, proc, log, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process for {url} exited ({proc.returncode}):\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout} s:\n{tail(log)}")


def tail(log, n=40):
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()[-n:]
    return "\n".join(lines)


class Postgres:
    """PostgreSQL from Debian's packages in a temporary directory, on 127.0.0.1, SCRAM over TCP."""

    def __init__(self, work, procs, tls=False):
        bindir = os.environ.get("MLPLAT_PG_BINDIR") or sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:]
        if isinstance(bindir, list):
            if not bindir:
                raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
            bindir = bindir[0]
        self.bin = bindir
        # In the system's temporary directory, which the postgres user can reach.
        self.dir = tempfile.mkdtemp(prefix="mlplat-hub-pg-")
        self.user = None
        if os.geteuid() == 0:  # initdb refuses root: run it as the postgres user
            self.user = "postgres"
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.procs = procs
        self.log = os.path.join(work, "postgres.log")
        subprocess.run(
            [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"],
            check=True, stdout=subprocess.DEVNULL, user=self.user,
        )
        server_args = []
        if tls:  # a throwaway self-signed certificate: the client asks for TLS, not for a CA
            key, cert = f"{self.dir}/server.key", f"{self.dir}/server.crt"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                check=True, capture_output=True,
            )
            os.chmod(key, 0o600)
            if self.user:
                shutil.chown(key, self.user)
                shutil.chown(cert, self.user)
            server_args = ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
        self.proc = procs.start(
            "postgres",
            [f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-k", self.dir, *server_args],
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, log=self.log, user=self.user,
        )
        for _ in range(100):
            if subprocess.run([f"{self.bin}/pg_isready", "-h", self.dir, "-p", str(self.port)], capture_output=True).returncode == 0:
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"postgres exited:\n{tail(self.log)}")
            time.sleep(0.2)
        raise SystemExit(f"postgres did not start:\n{tail(self.log)}")

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql, db="postgres", variables=()):
        args = [f"{self.bin}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", db]
        for k, v in variables:
            args += ["-v", f"{k}={v}"]
        r = subprocess.run(args, input=sql, capture_output=True, text=True, user=self.user)
        if r.returncode != 0:
            raise SystemExit(f"psql failed: {r.stderr.strip()}")
        return r.stdout.strip()


# --- HTTP, as a browser would ----------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path, form=None):
        data = None
        if form is not None:
            xsrf = next((c.value for c in self.jar if c.name == "_xsrf"), None)
            if xsrf is None:
                self.request(path)  # a GET first sets the _xsrf cookie
                xsrf = next((c.value for c in self.jar if c.name == "_xsrf"), "")
            data = urllib.parse.urlencode({**form, "_xsrf": xsrf}).encode()
        req = urllib.request.Request(self.base + path, data=data)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode(errors="replace")

    def login(self, username, password):
        """True when the hub logs the user in (a redirect away from the login page)."""
        status, headers, _ = self.request("/hub/login", {"username": username, "password": password})
        return status == 302 and "/hub/login" not in (headers.get("Location") or "")

    def signup(self, username, password):
        _, _, body = self.request(
            "/hub/signup",
            {"username": username, "signup_password": password, "signup_password_confirmation": password},
        )
        return body


# --- the scenario ----------------------------------------------------------------------------


class Hub:
    def __init__(self, args, work, procs):
        self.work, self.procs = work, procs
        docs = load_tree(args.out)
        self.tree = docs
        values, release, ns, version = hub_release(docs, args.charts)
        for key in args.drop_extra_config:
            values["hub"]["extraConfig"].pop(key)
        self.values = values
        objs = render_chart(values, release, ns, version, args.charts)
        # mlplat's own Secrets are in the tree, beside the chart's objects.
        objs += [d for d in docs if d.get("kind") == "Secret" and d["metadata"].get("namespace") == ns]
        self.objs = objs
        self.ns = ns
        hub = find(objs, "Deployment", "hub", ns)
        proxy = find(objs, "Deployment", "proxy", ns)
        self.hub_pod = hub["spec"]["template"]["spec"]
        self.hub_c = next(c for c in self.hub_pod["containers"] if c["name"] == "hub")
        self.hub_c["_ns"] = ns
        self.chp_c = next(c for c in proxy["spec"]["template"]["spec"]["containers"] if c["name"] == "chp")
        self.chp_c["_ns"] = ns
        self.root = os.path.join(work, "hub-root")
        lay_out(self.hub_c, self.hub_pod, objs, self.root)
        self.hub_port, self.api_port, self.public_port = free_port(), free_port(), free_port()
        self.hub_venv, self.chp = args.hub_venv, args.chp
        self.hub_log = os.path.join(work, "hub.log")
        self.chp_log = os.path.join(work, "chp.log")

    def admin_passwords_dir(self):
        return self.root + Z2JH_DIR + "/mlplat-admin-passwords"

    def start_proxy(self):
        env = container_env(self.chp_c, self.objs)
        env.update({"PATH": "/usr/bin:/bin", "HUB_SERVICE_PORT": str(self.hub_port)})
        cmd = []
        for a in self.chp_c["command"]:
            a = a.replace("$(HUB_SERVICE_PORT)", str(self.hub_port)).replace("http://hub:", "http://127.0.0.1:")
            a = {"--ip=": "--ip=127.0.0.1", "--api-ip=": "--api-ip=127.0.0.1"}.get(a, a)
            a = re.sub(r"^--api-port=\d+$", f"--api-port={self.api_port}", a)
            a = re.sub(r"^--port=\d+$", f"--port={self.public_port}", a)
            cmd.append(a)
        assert cmd[0] == "configurable-http-proxy", cmd
        cmd[0] = os.path.join(self.chp, "node_modules", ".bin", "configurable-http-proxy")
        self.chp_p = self.procs.start("chp", cmd, env, self.chp_log)

    def start_hub(self, db_url):
        env = container_env(self.hub_c, self.objs)
        env.update(
            {
                "PATH": f"{self.hub_venv}/bin:/usr/bin:/bin",
                "HOME": self.work,
                "LANG": "C.UTF-8",
                # Kubernetes' service links, for z2jh's get_name_env()
                "HUB_SERVICE_PORT": str(self.hub_port),
                "PROXY_API_SERVICE_PORT": str(self.api_port),
            }
        )
        args = [a.replace(Z2JH_DIR, self.root + Z2JH_DIR) for a in self.hub_c["args"]]
        assert args[0] == "jupyterhub", args
        args[0] = f"{self.hub_venv}/bin/jupyterhub"
        # In-cluster names become 127.0.0.1 (the command line overrides the config file).
        args += [
            f"--JupyterHub.hub_bind_url=http://127.0.0.1:{self.hub_port}",
            f"--JupyterHub.hub_connect_url=http://127.0.0.1:{self.hub_port}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.api_port}",
        ]
        if db_url:
            args.append(f"--JupyterHub.db_url={db_url}")
        # KubeSpawner loads a cluster config when the hub first handles a user; no server is
        # spawned here, so it names an API server on a loopback port nothing listens on.
        kubeconfig = os.path.join(self.work, "kubeconfig")
        with open(kubeconfig, "w", encoding="utf-8") as f:
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "none", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
                    "users": [{"name": "none", "user": {"token": "none"}}],
                    "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none", "namespace": self.ns}}],
                    "current-context": "none",
                },
                f,
            )
        env["KUBECONFIG"] = kubeconfig
        cwd = self.root + self.hub_c["workingDir"] if self.hub_c.get("workingDir") else os.path.join(self.work, "hub-cwd")
        os.makedirs(cwd, exist_ok=True)
        self.hub_p = self.procs.start("hub", args, env, self.hub_log, cwd=cwd)
        wait_for(f"http://127.0.0.1:{self.public_port}/hub/health", self.hub_p, self.hub_log)

    def stop_hub(self):
        self.procs.stop(self.hub_p)


def admin_password(hub, name):
    with open(os.path.join(hub.admin_passwords_dir(), name), encoding="utf-8") as f:
        return f.read()


def run_native(args, hub, pg_db_url, pg):
    cfg = hub.values["hub"]["config"]
    admins = sorted(cfg.get("Authenticator", {}).get("admin_users") or [])
    allowed = sorted(set(cfg.get("Authenticator", {}).get("allowed_users") or []) - set(admins))
    if not check("the config has an admin", bool(admins)):
        return
    admin = admins[0]
    password = admin_password(hub, admin)
    base = f"http://127.0.0.1:{hub.public_port}"

    db = urllib.parse.urlsplit(pg_db_url).path.lstrip("/") if pg else None
    if pg:
        tables = pg.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", db=db)
        check("the hub reached its database and created its tables", "users" in tables.split(",") and "users_info" in tables.split(","), tables)
        row = pg.psql("SELECT admin FROM users WHERE name = :'n'", db=db, variables=[("n", admin)])
        check("the admin is an admin in the hub's database", row == "t", repr(row))
        row = pg.psql("SELECT is_authorized FROM users_info WHERE username = :'n'", db=db, variables=[("n", admin)])
        check("the admin's account exists before anyone can sign up", row == "t", repr(row))

    b = Browser(base)
    b.signup(admin, "claimed-by-someone-else")
    check("signing up as the admin is refused", not Browser(base).login(admin, "claimed-by-someone-else"))
    b.signup(admin.upper(), "claimed-by-someone-else")
    check("signing up as the admin in capitals is refused", not Browser(base).login(admin, "claimed-by-someone-else"))

    check("a wrong password is refused", not Browser(base).login(admin, password + "x"))
    check("the admin logs in with the Secret's password", b.login(admin, password))
    status, _, _ = b.request("/hub/admin")
    check("the admin reaches the admin page", status == 200, f"status {status}")
    status, _, _ = b.request("/hub/api/users")
    check("the admin may list users (admin:users)", status == 200, f"status {status}")

    b.request("/hub/change-password", {"old_password": password, "new_password": "changed-in-the-hub", "new_password_confirmation": "changed-in-the-hub"})
    check(
        "an admin's password cannot be changed in the hub",
        Browser(base).login(admin, password) and not Browser(base).login(admin, "changed-in-the-hub"),
    )

    if allowed:
        user = allowed[0]
        Browser(base).signup(user, "a-user-password-1")
        check(f"a sign-up as allowed user {user} waits for an admin's approval", not Browser(base).login(user, "a-user-password-1"))
        status, _, _ = b.request(f"/hub/authorize/{urllib.parse.quote(user)}")
        check("the admin approves it", status in (200, 302), f"status {status}")
        check(f"then {user} logs in", Browser(base).login(user, "a-user-password-1"))

    # A rotation: the Secret holds a new password; the hub restarts (its pod rolls).
    hub.stop_hub()
    new = "rotated-" + password[::-1]
    SECRETS_SEEN.add(new)
    with open(os.path.join(hub.admin_passwords_dir(), admin), "w", encoding="utf-8") as f:
        f.write(new)
    hub.start_hub(pg_db_url)
    check("after a rotation the new password logs in", Browser(base).login(admin, new))
    check("after a rotation the old password is refused", not Browser(base).login(admin, password))


def run_dummy(args, hub):
    cfg = hub.values["hub"]["config"]
    admins = sorted(cfg.get("Authenticator", {}).get("admin_users") or [])
    if not check("the config has an admin", bool(admins)):
        return
    admin = admins[0]
    password = admin_password(hub, admin)
    base = f"http://127.0.0.1:{hub.public_port}"
    check("the admin cannot log in with any password", not Browser(base).login(admin, "anything"))
    b = Browser(base)
    check("the admin logs in with the Secret's password", b.login(admin, password))
    status, _, _ = b.request("/hub/admin")
    check("the admin reaches the admin page", status == 200, f"status {status}")
    check("another user logs in with any password (a demo)", Browser(base).login("visitor", "anything"))


def run_github(args, hub, db_url, pg):
    cfg = hub.values["hub"]["config"]
    base = f"http://127.0.0.1:{hub.public_port}"
    if pg:
        db = urllib.parse.urlsplit(db_url).path.lstrip("/")
        tables = pg.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", db=db)
        check("the hub reached its database and created its tables", "users" in tables.split(","), tables)
        if "sslmode=require" in db_url:
            ssl = pg.psql("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND datname = :'d'", variables=[("d", db)])
            check("the hub's connection to its database is encrypted (sslmode=require)", ssl not in ("", "0"), repr(ssl))
    status, _, _ = Browser(base).request("/hub/signup")
    check("there is no sign-up with GitHub OAuth", status == 404, f"status {status}")
    status, headers, _ = Browser(base).request("/hub/oauth_login")
    location = headers.get("Location") or ""
    client_id = cfg["GitHubOAuthenticator"]["client_id"]
    check(
        "login goes to GitHub with the configured client id",
        status == 302 and location.startswith("https://github.com/login/oauth/authorize") and f"client_id={urllib.parse.quote(client_id)}" in location,
        f"{status} {location}",
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="an mlplat output tree")
    ap.add_argument("--charts", required=True, help="the published chart archives")
    ap.add_argument("--hub-venv", required=True)
    ap.add_argument("--chp", required=True, help="a directory with configurable-http-proxy in node_modules")
    ap.add_argument("--work", required=True, help="an empty directory for the run")
    ap.add_argument("--drop-extra-config", action="append", default=[], help="remove this hub.extraConfig entry from the values (the hub without it)")
    ap.add_argument("--db-role-password", help="give the database role this password instead of the hub Secret's (a Secret and the server that disagree)")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    procs = Procs()
    pg = None
    try:
        hub = Hub(args, work, procs)
        hub.start_proxy()
        db = hub.values["hub"].get("db") or {}
        db_url = None
        if db.get("type") == "postgres":
            url = urllib.parse.urlsplit(db["url"])
            query = urllib.parse.parse_qs(url.query)
            tls = query.get("sslmode", ["prefer"])[0] in ("require", "verify-ca", "verify-full")
            pg = Postgres(work, procs, tls=tls)
            role = urllib.parse.unquote(url.username or "")
            dbname = url.path.lstrip("/")
            env = container_env(hub.hub_c, hub.objs)
            password = args.db_role_password or env.get("PGPASSWORD")
            if not password:
                raise SystemExit("the hub container has no PGPASSWORD")
            pg.psql("CREATE ROLE :\"r\" LOGIN PASSWORD :'p'", variables=[("r", role), ("p", password)])
            pg.psql("CREATE DATABASE :\"d\" OWNER :\"r\"", variables=[("d", dbname), ("r", role)])
            db_url = urllib.parse.urlunsplit(url._replace(netloc=f"{url.netloc.rsplit('@', 1)[0]}@127.0.0.1:{pg.port}"))
        try:
            hub.start_hub(db_url)
        except SystemExit as e:
            check("the hub starts and reaches its database", False, str(e))
            raise
        check("the hub answers through the proxy (/hub/health)", True)
        kind = hub.values["hub"]["config"]["JupyterHub"]["authenticator_class"]
        if kind == "native":
            run_native(args, hub, db_url, pg)
        elif kind == "dummy":
            run_dummy(args, hub)
        elif kind == "github":
            run_github(args, hub, db_url, pg)
        else:
            check(f"authenticator {kind} is one this test knows", False)
        with open(hub.hub_log, encoding="utf-8", errors="replace") as f:
            log = f.read()
        leaked = [s for s in SECRETS_SEEN if len(s) >= 8 and s in log]
        check("the hub's log holds no password or secret", not leaked, f"{len(leaked)} secret values in the log")
    except SystemExit as e:
        if str(e):
            say(f"FAIL {e}")
        RESULTS["failed"] += 1
    finally:
        procs.stop_all()
        if pg is not None:
            pg.remove()
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
