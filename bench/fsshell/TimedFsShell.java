import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FsShell;
import org.apache.hadoop.util.ToolRunner;

/**
 * Runs several `hdfs dfs` (FsShell) commands, separated by "--", one after
 * the other in one JVM, and prints on stderr how long each took, as
 * "hourglass-timed <command index> <nanoseconds>". The benchmarks time the
 * baselines' work with it after a warm-up command, so that the JVM's
 * start-up, class loading and first connections are not part of the figure
 * (timing whole JVMs and subtracting left the baseline to the JVM's own
 * run-to-run variance). Run it with the source launcher: java -cp
 * $HOURGLASS_HADOOP_CLASSPATH bench/fsshell/TimedFsShell.java -put a /d -- -put b /e
 */
public class TimedFsShell {
    public static void main(String[] args) throws Exception {
        List<List<String>> commands = new ArrayList<>();
        List<String> current = new ArrayList<>();
        for (String a : args) {
            if (a.equals("--")) {
                commands.add(current);
                current = new ArrayList<>();
            } else {
                current.add(a);
            }
        }
        commands.add(current);
        Configuration conf = new Configuration();
        for (int i = 0; i < commands.size(); i++) {
            String[] command = commands.get(i).toArray(new String[0]);
            long began = System.nanoTime();
            int rc = ToolRunner.run(new FsShell(conf), command);
            long took = System.nanoTime() - began;
            System.out.flush();
            if (rc != 0) {
                System.err.println("TimedFsShell: " + Arrays.toString(command) + " exited " + rc);
                System.exit(rc);
            }
            System.err.println("hourglass-timed " + i + " " + took);
        }
    }
}
