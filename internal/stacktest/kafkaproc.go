package stacktest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// PrivateKafka is a single-node KRaft broker owned by one test, for tests
// that stop and restart a broker without disturbing the shared stack. It
// runs the stack's Kafka jars on free loopback ports with its own data dir.
type PrivateKafka struct {
	tb      testing.TB
	Addr    string
	conf    string
	logPath string
	cmd     *exec.Cmd
	newCmd  func() *exec.Cmd
}

// StartPrivateKafka formats and starts a private broker; it is stopped when
// the test ends.
func StartPrivateKafka(tb testing.TB) *PrivateKafka {
	tb.Helper()
	classpath := Get(tb, "HOURGLASS_KAFKA_CLASSPATH")
	log4j := Get(tb, "HOURGLASS_KAFKA_LOG4J")
	dir := tb.TempDir()
	port, ctrl := freePort(tb), freePort(tb)
	k := &PrivateKafka{tb: tb, Addr: fmt.Sprintf("127.0.0.1:%d", port),
		conf: filepath.Join(dir, "server.properties"), logPath: filepath.Join(dir, "kafka.log")}
	props := strings.Join([]string{
		"process.roles=broker,controller", "node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", ctrl),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, ctrl),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", port),
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + filepath.Join(dir, "data"), "num.partitions=3",
		"offsets.topic.replication.factor=1", "offsets.topic.num.partitions=3",
		"transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
		"group.initial.rebalance.delay.ms=0", "auto.create.topics.enable=false",
	}, "\n") + "\n"
	if err := os.WriteFile(k.conf, []byte(props), 0o644); err != nil {
		tb.Fatal(err)
	}
	java := func(args ...string) *exec.Cmd {
		return exec.Command("java", append([]string{"-Xms64m", "-Xmx384m", "-XX:+UseSerialGC",
			"-Dlog4j.configuration=" + log4j, "-cp", classpath}, args...)...)
	}
	if out, err := java("kafka.tools.StorageTool", "format", "-t", "aaaaaaaaaaaaaaaaaaaaaa", "-c", k.conf).CombinedOutput(); err != nil {
		tb.Fatalf("stacktest: format private kafka: %v\n%s", err, out)
	}
	k.newCmd = func() *exec.Cmd { return java("kafka.Kafka", k.conf) }
	k.Start()
	tb.Cleanup(func() { k.Stop() })
	return k
}

// Start starts (or restarts) the broker and waits until it serves metadata.
func (k *PrivateKafka) Start() {
	k.tb.Helper()
	f, err := os.OpenFile(k.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		k.tb.Fatal(err)
	}
	k.cmd = k.newCmd()
	k.cmd.Stdout, k.cmd.Stderr = f, f
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		k.tb.Fatalf("stacktest: start private kafka: %v", err)
	}
	go func() { _ = k.cmd.Wait(); f.Close() }()
	deadline := time.Now().Add(90 * time.Second)
	client := &kafka.Client{Addr: kafka.TCP(k.Addr), Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
		cancel()
		if err == nil && meta.Controller.ID >= 0 && len(meta.Brokers) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(k.logPath)
	k.tb.Fatalf("stacktest: private kafka not ready in 90s; log tail:\n%s", tail(string(log), 3000))
}

// Stop stops the broker (SIGTERM, then SIGKILL after 30 s) and waits for it.
func (k *PrivateKafka) Stop() {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && syscall.Kill(k.cmd.Process.Pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
	k.cmd = nil
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
