# Shared by the infra scripts (sourced): the pinned tools they install into target/tools,
# once, under a flock.
CARGO_LAMBDA_VERSION="1.9.1"

# install_venv DIR CHECK PACKAGE: a venv at DIR holding PACKAGE, unless the Python CHECK
# already passes in it.
install_venv() {
  local dir="$1" check="$2" package="$3"
  flock "$dir.lock" bash -c '
    if ! "$0/bin/python" -c "$1" 2>/dev/null; then
      rm -rf "$0"; python3 -m venv "$0"
      "$0/bin/pip" install --quiet --disable-pip-version-check "$2"
    fi' "$dir" "$check" "$package"
}

# install_cargo_lambda TOOLS: cargo-lambda (and the zig it links with) into TOOLS/lambda-venv,
# put on PATH.
install_cargo_lambda() {
  install_venv "$1/lambda-venv" \
    "import importlib.metadata as m, sys; sys.exit(m.version('cargo-lambda') != '$CARGO_LAMBDA_VERSION')" \
    "cargo-lambda==$CARGO_LAMBDA_VERSION"
  export PATH="$1/lambda-venv/bin:$PATH"
}
