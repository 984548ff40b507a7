# Creates or updates the MLflow service accounts of the platform's other tools, through MLflow's
# REST API as the admin. mlplat runs it as a Job in MLflow's namespace; it is safe to repeat.
#
# Environment:
#   MLFLOW_URL                      the tracking server
#   ADMIN_USERNAME, ADMIN_PASSWORD  the admin (Secret mlflow-auth)
#   IDENTITIES                      the service accounts, separated by spaces
#   PASSWORD_<NAME>                 each one's password (Secret mlflow-identities)
#   WAIT_SECONDS                    how long to wait for the server (default 900)
#
# For each account: users/create, or users/update-password when it exists (an admin may set any
# password), never admin, EDIT on the Default experiment (id 0, where runs go without an
# experiment), then a login with its own password. It prints what it did, never a password or a
# response body (an error body can quote a password hash).
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

URL = os.environ["MLFLOW_URL"].rstrip("/")
ADMIN = (os.environ["ADMIN_USERNAME"], os.environ["ADMIN_PASSWORD"])
DEFAULT_EXPERIMENT = "0"
PERMISSION = "EDIT"


class Failed(Exception):
    pass


def call(method, path, body=None, auth=ADMIN, query=None):
    """(status, decoded JSON or None) of one request; never raises on an HTTP status."""
    url = URL + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, None


def expect(what, status, payload, *ok):
    if status not in ok:
        code = payload.get("error_code") if isinstance(payload, dict) else None
        raise Failed(f"{what}: HTTP {status}" + (f" ({code})" if code else ""))


def wait_for_server():
    deadline = time.monotonic() + int(os.environ.get("WAIT_SECONDS", "900"))
    while True:
        try:
            with urllib.request.urlopen(URL + "/health", timeout=10) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise Failed(f"{URL}/health did not answer 200 in time")
        print(f"waiting for {URL}/health", flush=True)
        time.sleep(5)


def ensure(username, password):
    status, payload = call("GET", "/api/2.0/mlflow/users/get", query={"username": username})
    if status == 404:
        status, payload = call(
            "POST", "/api/2.0/mlflow/users/create", {"username": username, "password": password}
        )
        expect(f"creating {username}", status, payload, 200)
        done = "created"
    else:
        expect(f"looking up {username}", status, payload, 200)
        status, payload = call(
            "PATCH",
            "/api/2.0/mlflow/users/update-password",
            {"username": username, "password": password},
        )
        expect(f"setting the password of {username}", status, payload, 200)
        done = "password set"
    status, payload = call(
        "PATCH", "/api/2.0/mlflow/users/update-admin", {"username": username, "is_admin": False}
    )
    expect(f"making {username} a regular user", status, payload, 200)

    status, payload = call(
        "GET", "/api/3.0/mlflow/users/permissions/list", query={"username": username}
    )
    expect(f"listing the permissions of {username}", status, payload, 200)
    current = [
        p.get("permission")
        for p in (payload or {}).get("permissions", [])
        if p.get("resource_type") == "experiment" and p.get("resource_pattern") == DEFAULT_EXPERIMENT
    ]
    grant = {"username": username, "resource_type": "experiment", "resource_id": DEFAULT_EXPERIMENT}
    if current != [PERMISSION]:
        if current:
            status, payload = call("POST", "/api/3.0/mlflow/users/permissions/revoke", grant)
            expect(f"revoking {username}'s permission on experiment 0", status, payload, 200)
        status, payload = call(
            "POST", "/api/3.0/mlflow/users/permissions/grant", {**grant, "permission": PERMISSION}
        )
        expect(f"granting {username} {PERMISSION} on experiment 0", status, payload, 200)

    status, payload = call("GET", "/api/2.0/mlflow/users/current", auth=(username, password))
    expect(f"logging in as {username}", status, payload, 200)
    if (payload or {}).get("user", {}).get("username") != username:
        raise Failed(f"logging in as {username}: the server answered for another user")
    print(f"{username}: {done}, {PERMISSION} on experiment 0, logs in", flush=True)


def main():
    wait_for_server()
    status, payload = call("GET", "/api/2.0/mlflow/users/current")
    if status == 401:
        raise Failed(
            f"the admin {ADMIN[0]} cannot log in: the server's admin password is not the one in "
            "Secret mlflow-auth (the tracking server's init container sets it on every start)"
        )
    expect(f"logging in as {ADMIN[0]}", status, payload, 200)
    names = os.environ.get("IDENTITIES", "").split()
    for username in names:
        password = os.environ.get(f"PASSWORD_{username.upper().replace('-', '_')}", "")
        if not password:
            raise Failed(f"no password for {username} in the environment")
        ensure(username, password)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"mlflow identities: {e}", file=sys.stderr)
        sys.exit(1)
