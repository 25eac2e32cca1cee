package io.hourglass.bench.kstreams;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;

/**
 * The router's work as a Kafka Streams application: read the raw topic,
 * decode and validate each record (refused ones to a DLQ topic with the
 * reason, error, source and stage headers), and for each route apply the
 * filter and write the projection, keyed by tenant, to the route's topic.
 *
 * <p>Usage: {@code java -cp kstreams-bench.jar:lib/* io.hourglass.bench.kstreams.RouterApp routes.json}.
 * The routes file (written by router/router_bench_test.go from the catalog)
 * names the brokers, the application id, the topics, the time bounds and the
 * routes; its "properties" override the settings below.
 *
 * <p>Protocol on stdout, one line each, times in Unix nanoseconds:
 * {@code STARTING <t>} just before KafkaStreams.start() (the JVM is up and
 * the clients are built), {@code RUNNING <t>} when the group has assigned
 * the tasks, {@code CONSUMED <t>} when every input partition's last record
 * (its end offset at start) was processed (a commit is then requested, so
 * the run does not wait for the commit interval), and {@code STOPPED ...}
 * with counts after a clean close. The application runs until its stdin
 * ends, then closes (committing what it processed) and exits 0; it exits 1
 * if the streams client fails, 2 on a bad routes file.
 */
public final class RouterApp {
    private RouterApp() {}

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
            System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
        if (args.length != 1) {
            System.err.println("usage: RouterApp <routes.json>");
            System.exit(2);
        }
        JsonNode cfg = new ObjectMapper().readTree(new File(args[0]));
        String brokers = cfg.path("bootstrap_servers").asText();
        String source = cfg.path("source_topic").asText();
        String dlq = cfg.path("dlq_topic").asText();
        List<Route> routes = new ArrayList<>();
        try {
            for (JsonNode r : cfg.path("routes")) {
                routes.add(new Route(r));
            }
            if (brokers.isEmpty() || source.isEmpty() || dlq.isEmpty() || routes.isEmpty()) {
                throw new IllegalArgumentException("bootstrap_servers, source_topic, dlq_topic and routes are required");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("routes file " + args[0] + ": " + e.getMessage());
            System.exit(2);
        }
        Map<Integer, Long> ends = endOffsets(brokers, source);

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, cfg.path("application_id").asText());
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        props.put(StreamsConfig.STATE_DIR_CONFIG, cfg.path("state_dir").asText(System.getProperty("java.io.tmpdir")));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        // One stream thread per input partition (a task each): on the
        // benchmark's 2 cores, 3 threads did better than 2 in back-to-back
        // runs (4.3-4.9 s against 4.9-5.7 s for its 200 000 records).
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, ends.size());
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        // The producer: acks=all and lz4 as the router's kafka-go writer. The
        // router hands its writer whole batches (2000 raw records, ~12 000
        // projections, ~650 per output partition) at once; records reach the
        // Java producer one by one, so it gets batches at least as large by
        // lingering: linger.ms 100 (Kafka Streams' own default) and 1 MiB
        // batches (as the ingest benchmark's ProducerPerformance). linger.ms
        // 5 with 256 KiB batches was slower on the same (noisy) machine:
        // 5.9-10.3 s against mostly 4.3-5.7 s.
        props.put(StreamsConfig.producerPrefix(ProducerConfig.ACKS_CONFIG), "all");
        props.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 100);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 1 << 20);
        // As the router's reader: 2000 records a batch, 16 MiB fetches, 250 ms wait.
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 2000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG), 16 << 20);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 250);
        for (Iterator<Map.Entry<String, JsonNode>> it = cfg.path("properties").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            props.put(e.getKey(), e.getValue().asText());
        }

        Counts counts = new Counts(ends);
        Topology topology = topology(source, dlq, routes, cfg.path("max_past_ms").asLong(), cfg.path("max_future_ms").asLong(), counts);
        KafkaStreams streams = new KafkaStreams(topology, props);
        AtomicBoolean running = new AtomicBoolean();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING && running.compareAndSet(false, true)) {
                say("RUNNING " + nanos());
            }
            if (now == KafkaStreams.State.ERROR) {
                System.err.println("kafka streams: state ERROR");
                System.exit(1);
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("kafka streams: " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        System.err.println("kafka streams properties: " + props);
        say("STARTING " + nanos());
        streams.start();
        while (System.in.read() >= 0) {
            // runs until the benchmark closes stdin
        }
        boolean closed = streams.close(Duration.ofSeconds(60));
        say("STOPPED in=" + counts.in.sum() + " out=" + counts.out.sum() + " dlq=" + counts.dlq.sum() + " clean=" + closed);
        System.exit(closed ? 0 : 1);
    }

    static Topology topology(String source, String dlq, List<Route> routes, long maxPastMs, long maxFutureMs, Counts counts) {
        StreamsBuilder b = new StreamsBuilder();
        Produced<byte[], byte[]> bytes = Produced.with(Serdes.ByteArray(), Serdes.ByteArray());
        KStream<byte[], Decoded> decoded = b.stream(source, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .processValues(() -> new Decode(maxPastMs, maxFutureMs, counts), Named.as("decode"));
        Map<String, KStream<byte[], Decoded>> branches = decoded.split(Named.as("decoded-"))
            .branch((k, d) -> d.record == null, Branched.withConsumer(s -> s.mapValues(d -> d.raw, Named.as("refused")).to(dlq, bytes), "dlq"))
            .defaultBranch(Branched.as("valid"));
        KStream<byte[], TrafficRecord> valid = branches.get("decoded-valid")
            .map((k, d) -> KeyValue.pair(d.record.tenant().getBytes(StandardCharsets.UTF_8), d.record), Named.as("key-by-tenant"));
        for (Route rt : routes) {
            valid.filter((k, r) -> rt.matches(r), Named.as("filter-" + rt.metric))
                .mapValues(r -> {
                    counts.out.increment();
                    return rt.project(r);
                }, Named.as("project-" + rt.metric))
                .to(rt.topic, bytes);
        }
        return b.build();
    }

    /** A decoded record, or the refused bytes and why. */
    static final class Decoded {
        final TrafficRecord record;
        final byte[] raw;

        Decoded(TrafficRecord record, byte[] raw) {
            this.record = record;
            this.raw = raw;
        }
    }

    /**
     * Decodes, validates and bounds each record (internal/record's
     * TimeBounds against the Kafka timestamp), and requests a commit once a
     * partition's last record is processed.
     */
    static final class Decode implements FixedKeyProcessor<byte[], byte[], Decoded> {
        private final long maxPastMs, maxFutureMs;
        private final Counts counts;
        private FixedKeyProcessorContext<byte[], Decoded> ctx;

        Decode(long maxPastMs, long maxFutureMs, Counts counts) {
            this.maxPastMs = maxPastMs;
            this.maxFutureMs = maxFutureMs;
            this.counts = counts;
        }

        @Override
        public void init(FixedKeyProcessorContext<byte[], Decoded> ctx) {
            this.ctx = ctx;
        }

        @Override
        public void process(FixedKeyRecord<byte[], byte[]> rec) {
            counts.in.increment();
            RecordHeaders headers = new RecordHeaders(); // the outputs carry none, as the router's
            Decoded d;
            try {
                TrafficRecord r = TrafficRecord.decode(rec.value());
                Instant ts = Instant.ofEpochSecond(r.epochSecond, r.nano);
                Instant ref = Instant.ofEpochMilli(rec.timestamp());
                if (ts.isAfter(ref.plusMillis(maxFutureMs)) || ts.isBefore(ref.minusMillis(maxPastMs))) {
                    throw new TrafficRecord.Invalid("out_of_range", "timestamp: event time too far from the record's Kafka time");
                }
                d = new Decoded(r, null);
            } catch (TrafficRecord.Invalid e) {
                counts.dlq.increment();
                headers.add("reason", e.code.getBytes(StandardCharsets.UTF_8));
                headers.add("error", String.valueOf(e.getMessage()).getBytes(StandardCharsets.UTF_8));
                ctx.recordMetadata().ifPresent(m -> headers.add("source",
                    (m.topic() + "/" + m.partition() + "/" + m.offset()).getBytes(StandardCharsets.UTF_8)));
                headers.add("stage", "router".getBytes(StandardCharsets.UTF_8));
                d = new Decoded(null, rec.value());
            }
            ctx.forward(rec.withValue(d).withHeaders(headers));
            ctx.recordMetadata().ifPresent(m -> {
                if (counts.reached(m.partition(), m.offset())) {
                    ctx.commit();
                }
            });
        }
    }

    /** Records in and out, and which input partitions are consumed. */
    static final class Counts {
        final LongAdder in = new LongAdder(), out = new LongAdder(), dlq = new LongAdder();
        private final Map<Integer, Long> ends;
        private final Map<Integer, Boolean> done = new ConcurrentHashMap<>();

        Counts(Map<Integer, Long> ends) {
            this.ends = ends;
        }

        /** True once, when offset is partition's last record at start; says CONSUMED after the last. */
        boolean reached(int partition, long offset) {
            Long end = ends.get(partition);
            if (end == null || offset < end - 1 || done.putIfAbsent(partition, true) != null) {
                return false;
            }
            if (done.size() == ends.values().stream().filter(e -> e > 0).count()) {
                say("CONSUMED " + nanos());
            }
            return true;
        }
    }

    /** The end offset of every partition of topic. */
    static Map<Integer, Long> endOffsets(String brokers, String topic) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (Admin admin = Admin.create(p)) {
            int partitions = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
            Map<TopicPartition, OffsetSpec> req = new ConcurrentHashMap<>();
            for (int i = 0; i < partitions; i++) {
                req.put(new TopicPartition(topic, i), OffsetSpec.latest());
            }
            return admin.listOffsets(req).all().get().entrySet().stream()
                .collect(Collectors.toMap(e -> e.getKey().partition(), e -> e.getValue().offset()));
        }
    }

    static long nanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
