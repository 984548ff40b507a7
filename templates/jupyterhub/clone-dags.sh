# mlplat: clone the platform's DAG repository into the user's home volume, once, before the
# server starts. The credentials (if the repository needs them) are in this init container's
# environment only: they never reach the user's container, and the clone's origin URL and
# .git/config carry none. Nothing from the user's home configures git (its HOME is a private
# temporary directory). It always exits 0: a failed clone is logged and the server starts.
# (No braces and no dollar-parenthesis here: KubeSpawner formats this text and Kubernetes expands
# the other.)
dest="$MLPLAT_HOME/dags"
part="$MLPLAT_HOME/.dags-clone"
if test -e "$dest"; then
  echo "mlplat: $dest exists: not cloning again"
  exit 0
fi
work=`mktemp -d` || exit 0
export HOME="$work" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
set --
if test -n "$GIT_PASSWORD"; then
  # git appends the action (get, store, erase) to the helper: the inner sh sees it as $1.
  set -- -c 'credential.helper=!sh -c "test \"\$1\" = get && echo \"username=\$GIT_USERNAME\" && echo \"password=\$GIT_PASSWORD\"" sh'
fi
if test -n "$GIT_SSH_KEY"; then
  printf '%s\n' "$GIT_SSH_KEY" >"$work/key" && chmod 600 "$work/key"
  export GIT_SSH_COMMAND="ssh -i $work/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$work/known_hosts"
fi
rm -rf "$part"
if timeout "$MLPLAT_CLONE_TIMEOUT" git "$@" clone --quiet --depth 1 --branch "$MLPLAT_DAGS_BRANCH" -- "$MLPLAT_DAGS_REPO" "$part" && mv "$part" "$dest"; then
  echo "mlplat: cloned $MLPLAT_DAGS_REPO ($MLPLAT_DAGS_BRANCH) into $dest"
else
  echo "mlplat: could not clone $MLPLAT_DAGS_REPO ($MLPLAT_DAGS_BRANCH): the server starts without $dest" >&2
  rm -rf "$part"
fi
rm -rf "$work"
exit 0
