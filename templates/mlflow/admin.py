# Sets MLflow's admin account from its Secret, before the server listens: mlplat runs it as the
# tracking server's init container on every start. MLflow itself creates the admin from its
# basic-auth config only once, on the first start against an empty user store, so without this
# a rotated or changed admin password would never reach the server.
#
# Reads the basic-auth config MLflow reads (MLFLOW_AUTH_CONFIG_PATH): the auth database and the
# admin's name and password. Prints no secret.
import sys

from mlflow.server.auth.config import read_auth_config
from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore


def main():
    config = read_auth_config()
    username, password = config.admin_username, config.admin_password
    if not username or not password:
        sys.exit("mlflow admin: the basic-auth config has no admin_username or admin_password")
    store = SqlAlchemyStore()
    store.init_db(config.database_uri)
    if not store.has_user(username):
        try:
            store.create_user(username, password, is_admin=True)
            print(f"mlflow admin: created {username}")
            return
        except Exception:
            # Another replica's init container created it a moment ago: update it below.
            if not store.has_user(username):
                raise
    user = store.get_user(username)
    if store.authenticate_user(username, password) and user.is_admin:
        print(f"mlflow admin: {username} is up to date")
        return
    store.update_user(username, password=password, is_admin=True)
    print(f"mlflow admin: set the password of {username} from its Secret")


if __name__ == "__main__":
    main()
