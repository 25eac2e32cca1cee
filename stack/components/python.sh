# The Python virtualenv for the Spark jobs and their tests: pyspark (pinned in
# versions.env) and the packages in stack/python/requirements.txt.
# pip's own cache (~/.cache/pip) keeps the built pyspark wheel, and the venv is
# reused while the requirements are unchanged, so a warm cache downloads nothing.

python_install() {
  local req=$STACK_SRC/python/requirements.txt stamp
  stamp=$(cat "$req" <(echo "pyspark==$SPARK_VERSION") | sha256sum | cut -c1-16)
  [ -f "$VENV_DIR/.complete-$stamp" ] && return 0
  log "creating the Python virtualenv $VENV_DIR (pyspark $SPARK_VERSION; the first time downloads ~400 MB)"
  rm -rf "$VENV_DIR"
  python3 -m venv "$VENV_DIR" || die "python3 -m venv failed"
  "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "pyspark==$SPARK_VERSION" -r "$req" \
    || die "pip could not install pyspark $SPARK_VERSION and $req"
  touch "$VENV_DIR/.complete-$stamp"
}

python_env() {
  echo "HOURGLASS_PYTHON=$VENV_DIR/bin/python"
  echo "SPARK_HOME=$("$VENV_DIR/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)"
}
