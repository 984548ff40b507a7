#!/usr/bin/env python3
"""Runs the DAG clone init container of an mlplat output tree's JupyterHub: its command and its
environment, as KubeSpawner would give them (secretKeyRef resolved from the tree's Secrets), with
the home volume a temporary directory and the repository on a git server of the test's own
(git's http-backend behind a small HTTP server on 127.0.0.1 that asks for the credentials in
Airflow's git Secret, as the real host would). The repository's host becomes that server.

Checks (`ok` / `FAIL`, then `N passed, N failed`; exit 1 if any failed): the clone lands in
~/dags with the credentials; its origin URL and every file of the home hold no credential; the
user's container gets none (the values give the git Secret to the init container only); a second
start leaves ~/dags alone; a git config in the home (a URL rewrite, a credential store) is not
read; wrong credentials, an unreachable server or a public repository: exit 0 every time, with a
clone only when it can be had. Used by tests/runtime_jupyterhub.rs with the tests' venv.
"""

import argparse
import base64
import http.server
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("hubcheck", os.path.join(HERE, "jupyterhub.py"))
hubcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hubcheck)
check, say = hubcheck.check, hubcheck.say


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


class GitServer:
    """git http-backend over HTTP on 127.0.0.1, with basic auth when credentials are given."""

    def __init__(self, root, credentials=None):
        backend = os.path.join(
            subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip(),
            "git-http-backend",
        )
        expected = None
        if credentials:
            expected = "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_cgi(self):
                server.requests += 1
                if expected and self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": root,
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": urllib.parse.unquote(path),
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_ADDR": "127.0.0.1",
                }
                out = subprocess.run([backend], input=body, env=env, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    k, _, v = line.partition(": ")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    elif k:
                        headers.append((k, v))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = handle_cgi

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def init_container(values):
    for c in values.get("singleuser", {}).get("initContainers") or []:
        if c["name"] == "clone-dags":
            return c
    raise SystemExit("the values have no clone-dags init container")


def unformat(s):
    """What KubeSpawner's str.format makes of a string without fields."""
    return s.replace("{{", "{").replace("}}", "}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    docs = hubcheck.load_tree(args.out)
    values, _, ns, _ = hubcheck.hub_release(docs, None)
    init = init_container(values)
    secrets = [d for d in docs if d.get("kind") == "Secret"]
    by_name = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in secrets}

    # Airflow's git Secret holds what the repository's host asks for.
    airflow_git = next((d for d in secrets if d["metadata"]["name"] == "airflow-https-git-secret"), None)
    creds = None
    if airflow_git:
        data = hubcheck.secret_data(airflow_git)
        creds = (data["username"].decode(), data["password"].decode())

    # The user's container: nothing in the values but the init container names the git Secret.
    text = repr({k: v for k, v in values.get("singleuser", {}).items() if k != "initContainers"})
    check("only the init container reads the git Secret", "jupyterhub-dags-git" not in text)
    if creds:
        check("the values hold no git credential", creds[1] not in repr(values))

    # The repository, served bare.
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "dags"))
    with open(os.path.join(src, "dags", "example_dag.py"), "w") as f:
        f.write("# a DAG\n")
    env0 = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "GIT_CONFIG_NOSYSTEM": "1"}
    branch = None
    repo = None
    env = {}
    for e in init["env"]:
        if "value" in e:
            env[e["name"]] = unformat(e["value"])
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            s = by_name.get((ns, ref["name"]))
            if s is None:
                check(f"Secret {ref['name']} of {e['name']} is in the tree", ref.get("optional", False))
                continue
            env[e["name"]] = hubcheck.secret_data(s)[ref["key"]].decode()
    branch, repo = env["MLPLAT_DAGS_BRANCH"], env["MLPLAT_DAGS_REPO"]
    subprocess.run(["git", "init", "-q", "-b", branch, src], check=True, env=env0)
    subprocess.run(["git", "-C", src, "add", "."], check=True, env=env0)
    subprocess.run(
        ["git", "-C", src, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "dags"],
        check=True, env=env0,
    )
    path = urllib.parse.urlsplit(repo).path
    srv = os.path.join(work, "srv")
    subprocess.run(["git", "clone", "-q", "--bare", src, srv + path], check=True, env=env0)

    script = init["command"][2]
    assert init["command"][:2] == ["sh", "-c"], init["command"]

    def run(server_port, home, env_over=None, drop=()):
        e = dict(env)
        e.update(env_over or {})
        for k in drop:
            e.pop(k, None)
        u = urllib.parse.urlsplit(repo)
        e["MLPLAT_DAGS_REPO"] = urllib.parse.urlunsplit(("http", f"127.0.0.1:{server_port}", u.path, "", ""))
        e["MLPLAT_HOME"] = home
        e["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        e["HOME"] = home  # the image's HOME is the home volume
        r = subprocess.run(["sh", "-c", script], env=e, capture_output=True, text=True, timeout=200)
        return r, e["MLPLAT_DAGS_REPO"]

    def home_holds(home, secret):
        for dirpath, _, files in os.walk(home):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    if secret.encode() in f.read():
                        return os.path.join(dirpath, name)
        return None

    server = GitServer(srv, creds)
    try:
        home = os.path.join(work, "home")
        os.makedirs(home)
        # A hostile git config in the home: a URL rewrite to nowhere and a credential store.
        with open(os.path.join(home, ".gitconfig"), "w") as f:
            f.write(
                f'[url "http://127.0.0.1:9/"]\n\tinsteadOf = http://127.0.0.1:{server.port}/\n'
                f"[credential]\n\thelper = store --file={home}/stolen\n"
            )
        r, url = run(server.port, home)
        check("the init container exits 0", r.returncode == 0, r.stderr)
        check("the DAGs are cloned into ~/dags", os.path.exists(os.path.join(home, "dags", "dags", "example_dag.py")), r.stdout + r.stderr)
        origin = subprocess.run(["git", "-C", os.path.join(home, "dags"), "remote", "get-url", "origin"], capture_output=True, text=True).stdout.strip()
        check("the clone's origin is the repository URL, without credentials", origin == url, origin)
        if creds:
            check("the clone needed the credentials (the server asks for them)", server.requests > 0)
            where = home_holds(home, creds[1])
            check("no file in the home holds the token (.git/config included)", where is None, str(where))
            check("the home's git config was not read (no credential stored)", not os.path.exists(os.path.join(home, "stolen")))
            check("nothing the script printed holds the token", creds[1] not in r.stdout + r.stderr)

        r2, _ = run(server.port, home)
        check("a second start exits 0 and leaves ~/dags alone", r2.returncode == 0 and "not cloning again" in r2.stdout, r2.stdout + r2.stderr)

        home_b = os.path.join(work, "home-unreachable")
        os.makedirs(home_b)
        closed = hubcheck.free_port()
        r3, _ = run(closed, home_b)
        check("an unreachable server: exit 0, no ~/dags", r3.returncode == 0 and not os.path.exists(os.path.join(home_b, "dags")), r3.stderr)
        check("an unreachable server: the failure is logged", "could not clone" in r3.stderr, r3.stderr)
        check("an unreachable server: no partial clone left", not os.path.exists(os.path.join(home_b, ".dags-clone")))

        if creds:
            home_c = os.path.join(work, "home-wrong")
            os.makedirs(home_c)
            r4, _ = run(server.port, home_c, {"GIT_PASSWORD": "not-the-token"})
            check("wrong credentials: exit 0, no ~/dags, the failure logged",
                  r4.returncode == 0 and not os.path.exists(os.path.join(home_c, "dags")) and "could not clone" in r4.stderr,
                  r4.stderr)
    finally:
        server.stop()

    public = GitServer(srv, None)
    try:
        home_d = os.path.join(work, "home-public")
        os.makedirs(home_d)
        r5, _ = run(public.port, home_d, drop=("GIT_USERNAME", "GIT_PASSWORD", "GIT_SSH_KEY"))
        check("a public repository is cloned without credentials",
              r5.returncode == 0 and os.path.exists(os.path.join(home_d, "dags", "dags", "example_dag.py")), r5.stderr)
    finally:
        public.stop()
    print(f"{hubcheck.RESULTS['passed']} passed, {hubcheck.RESULTS['failed']} failed")
    sys.exit(1 if hubcheck.RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
