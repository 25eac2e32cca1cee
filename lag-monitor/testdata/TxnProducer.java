import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

// TxnProducer <brokers> <topic> <transactional.id> commit <transactions> <records each> | open <records>
// commit: each transaction writes its records to every partition, then commits.
// open: writes the records in one transaction, prints OPEN and waits for stdin to close (never committing).
public class TxnProducer {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", a[0]);
        p.put("transactional.id", a[2]);
        p.put("transaction.timeout.ms", "300000");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            pr.initTransactions();
            int parts = pr.partitionsFor(a[1]).size();
            if (a[3].equals("commit")) {
                int txns = Integer.parseInt(a[4]), n = Integer.parseInt(a[5]);
                for (int t = 0; t < txns; t++) {
                    pr.beginTransaction();
                    for (int q = 0; q < parts; q++)
                        for (int i = 0; i < n; i++)
                            pr.send(new ProducerRecord<>(a[1], q, "k", "t" + t + "-" + i));
                    pr.commitTransaction();
                }
                System.out.println("COMMITTED");
            } else {
                int n = Integer.parseInt(a[4]);
                pr.beginTransaction();
                for (int q = 0; q < parts; q++)
                    for (int i = 0; i < n; i++)
                        pr.send(new ProducerRecord<>(a[1], q, "k", "open-" + i));
                pr.flush();
                System.out.println("OPEN");
                System.out.flush();
                while (System.in.read() != -1) { }
            }
        }
    }
}
