//go:build integration

package yarn

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/stretchr/testify/require"
)

// rmClasspath resolves the ResourceManager's jars once (like the stack's mvn_copy:
// a marker file makes later runs download nothing).
func rmClasspath(t *testing.T) string {
	t.Helper()
	dest := filepath.Join(stacktest.Get(t, "HOURGLASS_HOME"), "lib", "yarn-rm-3.3.6")
	if _, err := os.Stat(filepath.Join(dest, ".complete")); err != nil {
		require.NoError(t, os.RemoveAll(dest))
		pom, err := filepath.Abs("rm")
		require.NoError(t, err)
		out, err := exec.Command("mvn", "-q", "-B", "-Dstyle.color=never", "-f", filepath.Join(pom, "pom.xml"),
			"dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+dest).CombinedOutput()
		require.NoError(t, err, "maven: %s", out)
		require.NoError(t, os.WriteFile(filepath.Join(dest, ".complete"), nil, 0o644))
	}
	return dest + "/*"
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// javaOpens: what Hadoop needs on Java 17 (as stack/lib.sh java_opens).
func javaOpens() []string {
	var out []string
	for _, m := range []string{"java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio",
		"java.util", "java.util.concurrent", "java.util.concurrent.atomic", "java.util.zip", "java.math", "java.text",
		"sun.nio.ch", "sun.nio.cs", "sun.security.action", "sun.util.calendar", "sun.security.util", "sun.security.x509"} {
		out = append(out, "--add-opens=java.base/"+m+"=ALL-UNNAMED")
	}
	return out
}

type rm struct {
	cmd  *exec.Cmd
	web  string
	log  string
	done chan error
}

// startRM starts a ResourceManager with the CapacityScheduler and the given queue file.
func startRM(t *testing.T, classpath, queues string) *rm {
	t.Helper()
	conf := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(conf, "capacity-scheduler.xml"), []byte(queues), 0o644))
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	site := "<configuration>\n"
	for k, v := range map[string]string{
		"yarn.resourcemanager.hostname":                           "127.0.0.1",
		"yarn.resourcemanager.address":                            fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"yarn.resourcemanager.scheduler.address":                  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"yarn.resourcemanager.resource-tracker.address":           fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"yarn.resourcemanager.admin.address":                      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"yarn.resourcemanager.webapp.address":                     web,
		"yarn.resourcemanager.scheduler.class":                    "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler",
		"yarn.resourcemanager.recovery.enabled":                   "false",
		"hadoop.tmp.dir":                                          filepath.Join(conf, "tmp"),
		"yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "1000",
	} {
		site += fmt.Sprintf("<property><name>%s</name><value>%s</value></property>\n", k, v)
	}
	require.NoError(t, os.WriteFile(filepath.Join(conf, "yarn-site.xml"), []byte(site+"</configuration>\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(conf, "log4j.properties"), []byte(
		"log4j.rootLogger=INFO,console\nlog4j.appender.console=org.apache.log4j.ConsoleAppender\n"+
			"log4j.appender.console.layout=org.apache.log4j.PatternLayout\n"+
			"log4j.appender.console.layout.ConversionPattern=%d %p %c{1}: %m%n\n"), 0o644))
	logPath := filepath.Join(conf, "rm.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	args := append([]string{"-Xmx256m"}, javaOpens()...)
	args = append(args, "-cp", conf+":"+classpath, "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager")
	cmd := exec.Command("java", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	r := &rm{cmd: cmd, web: web, log: logPath, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("ResourceManager pid %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	return r
}

type schedulerInfo struct {
	Scheduler struct {
		SchedulerInfo struct {
			Type   string `json:"type"`
			Queues struct {
				Queue []struct {
					QueueName   string  `json:"queueName"`
					Capacity    float64 `json:"capacity"`
					MaxCapacity float64 `json:"maxCapacity"`
					State       string  `json:"state"`
				} `json:"queue"`
			} `json:"queues"`
		} `json:"schedulerInfo"`
	} `json:"scheduler"`
}

// The real CapacityScheduler loads the queue file: sparkconnect 30 %, default 70 %.
// A broken file (children summing to 90 %) makes the ResourceManager refuse to start.
func TestResourceManagerLoadsTheQueues(t *testing.T) {
	cp := rmClasspath(t)
	good, err := os.ReadFile("capacity-scheduler.xml")
	require.NoError(t, err)

	r := startRM(t, cp, string(good))
	var info schedulerInfo
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.web+"/ws/v1/cluster/scheduler", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			cancel()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		} else {
			cancel()
		}
		select {
		case err := <-r.done:
			out, _ := os.ReadFile(r.log)
			t.Fatalf("ResourceManager exited (%v) with the project's queue file:\n%s", err, tail(string(out), 40))
		default:
		}
		require.True(t, time.Now().Before(deadline), "ResourceManager not answering")
		time.Sleep(500 * time.Millisecond)
	}
	require.Equal(t, "capacityScheduler", info.Scheduler.SchedulerInfo.Type)
	got := map[string][2]float64{}
	for _, q := range info.Scheduler.SchedulerInfo.Queues.Queue {
		require.Equal(t, "RUNNING", q.State, q.QueueName)
		got[q.QueueName] = [2]float64{q.Capacity, q.MaxCapacity}
	}
	require.Len(t, got, 2)
	require.InDelta(t, 30, got["sparkconnect"][0], 0.01)
	require.InDelta(t, 40, got["sparkconnect"][1], 0.01)
	require.InDelta(t, 70, got["default"][0], 0.01)

	broken := strings.Replace(string(good), "<value>70</value>", "<value>60</value>", 1)
	require.NotEqual(t, string(good), broken)
	b := startRM(t, cp, broken)
	// The RM logs the refusal and shuts its services down (the JVM may linger).
	require.Eventually(t, func() bool {
		out, _ := os.ReadFile(b.log)
		return strings.Contains(string(out), "Failed to initialize queues")
	}, 2*time.Minute, 250*time.Millisecond, "the ResourceManager accepted queues summing to 90 %")
	out, err := os.ReadFile(b.log)
	require.NoError(t, err)
	require.Contains(t, string(out), "Error starting ResourceManager", tail(string(out), 20))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
