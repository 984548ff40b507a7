# mlplat: the hub's admin accounts. Every name in Authenticator.admin_users has a password in
# the Secret jupyterhub-admin-passwords, mounted beside this config file as
# mlplat-admin-passwords/<name>. At every start, before the hub listens:
#
# - native (NativeAuthenticator): each admin's account is created, or updated, with a bcrypt
#   hash of that password, authorized and without two-factor setup. Signing up as an admin is
#   refused, so nobody can claim an admin account, and so is changing an admin's password in
#   the hub: the Secret is the password (rotate it there). A sign-up of any other name waits for
#   an admin's approval at /hub/authorize, allowed users included, so that nobody can take a
#   listed name by signing up first.
# - dummy (a local demo): an admin logs in with that password only; other users with any.
#
# An admin without a password stops the hub: such an account could be claimed.
import os as _mlplat_os
from hmac import compare_digest as _mlplat_compare_digest

_MLPLAT_PASSWORDS = _mlplat_os.path.join(
    _mlplat_os.path.dirname(_mlplat_os.path.realpath(__file__)), "mlplat-admin-passwords"
)


def _mlplat_admin_passwords(authenticator):
    """The admins' passwords, by normalized name; stops the hub if one is missing."""
    passwords = {}
    for name in sorted(authenticator.admin_users):
        path = _mlplat_os.path.join(_MLPLAT_PASSWORDS, name)
        try:
            with open(path, encoding="utf-8") as f:
                password = f.read()
        except OSError as e:
            raise SystemExit(
                f"mlplat: admin {name!r} has no password ({path}: {e.strerror}); list the admin"
                " in tools.jupyterhub.auth.adminUsers and apply the Secret"
                " jupyterhub-admin-passwords that mlplat renders"
            )
        if not password:
            raise SystemExit(f"mlplat: the password of admin {name!r} is empty ({path})")
        passwords[authenticator.normalize_username(name)] = password
    return passwords


def _mlplat_native():
    import base64

    import bcrypt
    from nativeauthenticator import NativeAuthenticator
    from nativeauthenticator.orm import UserInfo

    class MlplatNativeAuthenticator(NativeAuthenticator):
        """NativeAuthenticator whose admins are set from a Secret and cannot be signed up for."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.mlplat_admins = _mlplat_admin_passwords(self)
            for name, password in sorted(self.mlplat_admins.items()):
                self._mlplat_set_admin(name, password.encode())

        def _mlplat_set_admin(self, name, password):
            info = UserInfo.find(self.db, name)
            if info is None:
                info = UserInfo(username=name, password=bcrypt.hashpw(password, bcrypt.gensalt()))
                self.db.add(info)
                what = "created"
            else:
                try:
                    same = bcrypt.checkpw(password, info.password)
                except ValueError:
                    same = False
                if not same:
                    info.password = bcrypt.hashpw(password, bcrypt.gensalt())
                what = "kept" if same else "set"
            info.is_authorized = True
            if info.has_2fa:
                # A second factor nobody here set up would lock the admin out.
                info.has_2fa = False
                info.otp_secret = base64.b32encode(_mlplat_os.urandom(10)).decode()
            self.db.commit()
            self.log.info(
                "mlplat: admin %s: account %s, password from the Secret jupyterhub-admin-passwords",
                name,
                what,
            )

        def create_user(self, username, password, **kwargs):
            name = self.normalize_username(username)
            if name in self.mlplat_admins:
                self.log.warning("mlplat: refused a sign-up as admin %s", name)
                return None
            info = super().create_user(username, password, **kwargs)
            if info is not None and info.is_authorized and not self.open_signup:
                # NativeAuthenticator pre-authorizes allowed users: the first to sign up with a
                # listed name would own it. An admin approves sign-ups instead.
                info.is_authorized = False
                self.db.commit()
            return info

        def change_password(self, username, new_password):
            name = self.normalize_username(username)
            if name in self.mlplat_admins:
                self.log.warning(
                    "mlplat: refused to change the password of admin %s: it is set from the"
                    " Secret jupyterhub-admin-passwords (mlplat rotate jupyterhub/admin-password/%s)",
                    name,
                    name,
                )
                return None
            return super().change_password(username, new_password)

    return MlplatNativeAuthenticator


def _mlplat_dummy():
    from jupyterhub.auth import DummyAuthenticator

    class MlplatDummyAuthenticator(DummyAuthenticator):
        """DummyAuthenticator (a local demo) whose admins need their password from a Secret."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.mlplat_admins = _mlplat_admin_passwords(self)

        async def authenticate(self, handler, data):
            name = self.normalize_username(data["username"])
            if name in self.mlplat_admins:
                given = data.get("password", "").encode()
                if _mlplat_compare_digest(given, self.mlplat_admins[name].encode()):
                    return name
                return None
            return await super().authenticate(handler, data)

    return MlplatDummyAuthenticator


_mlplat_class = c.JupyterHub.get("authenticator_class")  # noqa: F821 (the config object)
if _mlplat_class in ("native", "nativeauthenticator.NativeAuthenticator"):
    c.JupyterHub.authenticator_class = _mlplat_native()  # noqa: F821
elif _mlplat_class in ("dummy", "jupyterhub.auth.DummyAuthenticator"):
    c.JupyterHub.authenticator_class = _mlplat_dummy()  # noqa: F821
else:
    print(f"mlplat: authenticator_class {_mlplat_class!r}: admin passwords not applied")
