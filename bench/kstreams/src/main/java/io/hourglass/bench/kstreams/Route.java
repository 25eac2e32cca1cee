package io.hourglass.bench.kstreams;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * One catalog metric as the router runs it (internal/catalog's Route): the
 * filter, the projected fields in order, the output topic. Read from the
 * routes file the benchmark writes from the catalog.
 */
final class Route {
    final String metric;
    final String topic;
    private final Field[] fields;
    private final List<Predicate<TrafficRecord>> filter = new ArrayList<>();

    Route(JsonNode n) {
        metric = n.path("metric").asText();
        topic = n.path("topic").asText();
        List<Field> fs = new ArrayList<>();
        for (JsonNode f : n.path("fields")) {
            Field field = Field.byName(f.asText());
            if (field == null) {
                throw new IllegalArgumentException("metric " + metric + ": unknown field " + f.asText());
            }
            fs.add(field);
        }
        fields = fs.toArray(new Field[0]);
        for (JsonNode c : n.path("filter")) {
            filter.add(condition(c));
        }
    }

    /**
     * A filter condition. Only the operators the shipped catalog uses are
     * implemented (exists); any other fails the start, so the baseline never
     * routes differently from the router.
     */
    private Predicate<TrafficRecord> condition(JsonNode c) {
        String name = c.path("field").asText();
        String op = c.path("op").asText();
        Field f = Field.byName(name);
        if (f == null) {
            throw new IllegalArgumentException("metric " + metric + ": filter on unknown field " + name);
        }
        if (!op.equals("exists")) {
            throw new IllegalArgumentException("metric " + metric + ": filter op " + op
                + " is not implemented by the Kafka Streams baseline (bench/kstreams: only exists)");
        }
        // catalog.compileCondition: exists holds when the field is present (a
        // number: set; a string: non-empty).
        return switch (f.type) {
            case INT, FLOAT -> r -> r.hasNumber(f);
            case TIMESTAMP -> r -> true;
            default -> r -> r.text(f) != null;
        };
    }

    boolean matches(TrafficRecord r) {
        for (Predicate<TrafficRecord> p : filter) {
            if (!p.test(r)) {
                return false;
            }
        }
        return true;
    }

    /** The projected record, byte for byte internal/record's AppendProjection. */
    byte[] project(TrafficRecord r) {
        GoJson.Buf b = new GoJson.Buf(128);
        b.put('{');
        boolean first = true;
        for (Field f : fields) {
            switch (f.type) {
                case TIMESTAMP -> {
                    first = key(b, f, first);
                    b.put(r.timestampJson());
                }
                case INT -> {
                    if (r.hasNumber(f)) {
                        first = key(b, f, first);
                        b.ascii(Long.toString((long) r.number(f)));
                    }
                }
                case FLOAT -> {
                    if (r.hasNumber(f)) {
                        first = key(b, f, first);
                        GoJson.appendFloat(b, r.number(f));
                    }
                }
                case STRING, IP -> {
                    String s = r.text(f);
                    if (s != null) {
                        first = key(b, f, first);
                        GoJson.appendString(b, s);
                    }
                }
            }
        }
        b.put('}');
        return b.toBytes();
    }

    private static boolean key(GoJson.Buf b, Field f, boolean first) {
        if (!first) {
            b.put(',');
        }
        b.put(f.key);
        return false;
    }
}
