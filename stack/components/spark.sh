# Spark: pyspark from PyPI (installed into the venv by python_install, which runs
# first) plus the Kafka connector jars from Maven Central. Spark is a library of the
# jobs and tests, not a long-running service: no start/ready here (the optional
# Spark Connect server is stack/components/spark_connect.sh).
#
# Only the jars pyspark/jars lacks are copied (see stack/spark/pom.xml); jobs add them
# with `--jars "$HOURGLASS_SPARK_KAFKA_JARS"` or `.config("spark.jars", ...)`.
# pyspark 4 starts its JVM with the --add-opens Java 17 needs (spark-submit adds
# them itself), so no JAVA options are required.

SPARK_KAFKA_LIB=$LIB_DIR/spark-kafka-$SPARK_VERSION
# The Maven Central reachable here has no spark-token-provider-kafka-0-10_2.13:4.0.1
# (404, not in its maven-metadata.xml); 4.0.0 is the nearest and is what 4.0.1's
# connector runs with in the smoke test. Other Spark versions use their own.
case $SPARK_VERSION in
  4.0.1) SPARK_KAFKA_TOKEN_PROVIDER_VERSION=${SPARK_KAFKA_TOKEN_PROVIDER_VERSION:-4.0.0} ;;
  *)     SPARK_KAFKA_TOKEN_PROVIDER_VERSION=${SPARK_KAFKA_TOKEN_PROVIDER_VERSION:-$SPARK_VERSION} ;;
esac

spark_install() {
  [ -x "$VENV_DIR/bin/python" ] || die "spark needs the Python venv: install the python component first"
  mvn_copy "$STACK_SRC/spark" "$SPARK_KAFKA_LIB" -Dspark.version="$SPARK_VERSION" \
    -Dspark.token.provider.version="$SPARK_KAFKA_TOKEN_PROVIDER_VERSION"
}

# spark_kafka_jars: the connector jars, comma-separated absolute paths (for --jars).
spark_kafka_jars() {
  local j out=""
  for j in "$SPARK_KAFKA_LIB"/*.jar; do
    [ -f "$j" ] && out="${out:+$out,}$j"
  done
  printf '%s' "$out"
}

# spark_home: the pyspark package directory (SPARK_HOME of spark-submit).
spark_home() {
  "$VENV_DIR/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

spark_env() {
  echo "HOURGLASS_SPARK_VERSION=$SPARK_VERSION"
  echo "HOURGLASS_SPARK_KAFKA_JARS=$(spark_kafka_jars)"
  # Endpoint of the optional Spark Connect server (stack/components/spark_connect.sh);
  # written here because `up` writes the env of the STACK_INSTALL components only.
  # Listening only after `stack/stack.sh up spark_connect`.
  echo "HOURGLASS_SPARK_CONNECT=sc://127.0.0.1:$SPARK_CONNECT_PORT"
}
