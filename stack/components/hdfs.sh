# Apache Hadoop HDFS: one NameNode and one DataNode, jars from Maven Central.

HDFS_LIB=$LIB_DIR/hadoop-$HADOOP_VERSION
HDFS_RUN_DIR=$RUN_DIR/hdfs
HDFS_CONF_DIR=$HDFS_RUN_DIR/conf
HDFS_NAME_DIR=$HDFS_RUN_DIR/name
HDFS_DATA_DIR=$HDFS_RUN_DIR/data

hdfs_install() { mvn_copy "$STACK_SRC/hdfs" "$HDFS_LIB" -Dhadoop.version="$HADOOP_VERSION"; }

# hdfs_jvm <heap> <proc>: set HDFS_JVM to the java command line (up to the main
# class) that bin/hdfs would build: conf dir first on the classpath (so
# core-site.xml and hdfs-site.xml win over the *-default.xml inside the jars),
# Java 17 opens, our log4j file. -Dproc_<proc> names the process in `ps`, as
# Hadoop's scripts do. An array, not a function, because spawn execs it via setsid.
hdfs_jvm() {
  local heap=$1 proc=$2
  # shellcheck disable=SC2207  # java_opens is a space-separated list of flags
  HDFS_JVM=(java -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -Dproc_"$proc" $(java_opens)
    -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true
    -Dlog4j.configuration="file:$STACK_SRC/hdfs/log4j.properties"
    -Dhadoop.log.dir="$LOG_DIR" -Dhadoop.home.dir="$HDFS_LIB"
    -cp "$HDFS_CONF_DIR:$HDFS_LIB/*")
}

hdfs_start() {
  export HDFS_RUN_DIR HDFS_NAME_DIR HDFS_DATA_DIR HDFS_NAMENODE_PORT HDFS_NAMENODE_HTTP_PORT \
    HDFS_DATANODE_PORT HDFS_DATANODE_HTTP_PORT HDFS_DATANODE_IPC_PORT
  render "$STACK_SRC/hdfs/core-site.xml.tmpl" "$HDFS_CONF_DIR/core-site.xml"
  render "$STACK_SRC/hdfs/hdfs-site.xml.tmpl" "$HDFS_CONF_DIR/hdfs-site.xml"
  # For client tools run with HOURGLASS_HADOOP_CLASSPATH (the daemons name their
  # own file): warnings only, on stderr, so `FsShell -cat` output stays clean.
  printf '%s\n' 'log4j.rootLogger=WARN, stderr' \
    'log4j.appender.stderr=org.apache.log4j.ConsoleAppender' \
    'log4j.appender.stderr.Target=System.err' \
    'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout' \
    'log4j.appender.stderr.layout.ConversionPattern=%d{HH:mm:ss} %p %c: %m%n' \
    'log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR' > "$HDFS_CONF_DIR/log4j.properties"
  # Format once, when the name dir holds no namespace yet (current/VERSION), so a
  # second `up` keeps the data. A DataNode's storage carries the clusterID of the
  # namespace it joined and would refuse a new one: drop it with the old namespace.
  if [ ! -f "$HDFS_NAME_DIR/current/VERSION" ] && ! pid_alive hdfs-namenode; then
    log "formatting the HDFS NameNode in $HDFS_NAME_DIR"
    mkdir -p "$LOG_DIR"
    rm -rf "$HDFS_NAME_DIR" "$HDFS_DATA_DIR"
    hdfs_jvm 128m namenode-format
    "${HDFS_JVM[@]}" org.apache.hadoop.hdfs.server.namenode.NameNode \
      -format -clusterid hourglass -force -nonInteractive >>"$LOG_DIR/hdfs-namenode.log" 2>&1 \
      || fail_component hdfs hdfs-namenode "NameNode format failed"
  fi
  # spawn skips a process that is still running, so after a lost DataNode `up`
  # restarts just the DataNode.
  hdfs_jvm "$HDFS_NAMENODE_HEAP" namenode
  spawn hdfs-namenode "${HDFS_JVM[@]}" org.apache.hadoop.hdfs.server.namenode.NameNode
  hdfs_jvm "$HDFS_DATANODE_HEAP" datanode
  spawn hdfs-datanode "${HDFS_JVM[@]}" org.apache.hadoop.hdfs.server.datanode.DataNode
}

# hdfs_jmx_field <json> <name>: the value of "name" : value in the NameNode's
# pretty-printed JMX JSON (one attribute per line), quotes stripped.
hdfs_jmx_field() {
  printf '%s\n' "$1" | sed -n "s/^ *\"$2\" : \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n1
}

# Ready when a client can write: the NameNode is out of safe mode and counts a
# live DataNode with free space (it only has a capacity once the DataNode's first
# heartbeat carried its storage report). The NameNode keeps a DataNode "live" for
# a while after it died, so the DataNode's own process and transfer port are
# checked too. One local HTTP request: cheap enough for `status`.
hdfs_ready() {
  local jmx state live remaining
  pid_alive hdfs-namenode && pid_alive hdfs-datanode && port_open "$HDFS_DATANODE_PORT" || return 1
  jmx=$(curl -fsS --max-time 3 \
    "http://127.0.0.1:$HDFS_NAMENODE_HTTP_PORT/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState") || return 1
  state=$(hdfs_jmx_field "$jmx" FSState)
  live=$(hdfs_jmx_field "$jmx" NumLiveDataNodes)
  remaining=$(hdfs_jmx_field "$jmx" CapacityRemaining)
  [ "$state" = Operational ] && [ "${live:-0}" -ge 1 ] && [ "${remaining:-0}" -gt 0 ]
}

hdfs_endpoint() { echo "hdfs://127.0.0.1:$HDFS_NAMENODE_PORT"; }
hdfs_pids() { echo hdfs-namenode hdfs-datanode; }

hdfs_env() {
  echo "HOURGLASS_HDFS_NAMENODE=127.0.0.1:$HDFS_NAMENODE_PORT"
  echo "HOURGLASS_HDFS_URL=hdfs://127.0.0.1:$HDFS_NAMENODE_PORT"
  echo "HOURGLASS_WEBHDFS_URL=http://127.0.0.1:$HDFS_NAMENODE_HTTP_PORT/webhdfs/v1"
  # Classpath for Hadoop's own client tools, e.g.
  #   java -cp "$HOURGLASS_HADOOP_CLASSPATH" org.apache.hadoop.fs.FsShell -put f /dir
  # (add the --add-opens of stack/lib.sh java_opens on Java 17).
  echo "HOURGLASS_HADOOP_CLASSPATH=$HDFS_CONF_DIR:$HDFS_LIB/*"
}
