package io.hourglass.bench.kstreams;

import java.util.HashMap;
import java.util.Map;

/**
 * The fields of a traffic record, in canonical order, with their JSON types: the
 * POJO a Kafka user writes for the schema internal/record owns (fields.go).
 */
enum Field {
    TIMESTAMP("timestamp", Type.TIMESTAMP, true),
    TENANT("tenant", Type.STRING, true),
    REQUEST_ID("request_id", Type.STRING, false),
    METHOD("method", Type.STRING, true),
    SCHEME("scheme", Type.STRING, false),
    HOST("host", Type.STRING, false),
    PATH("path", Type.STRING, false),
    STATUS("status", Type.INT, true),
    BYTES_IN("bytes_in", Type.INT, false),
    BYTES_OUT("bytes_out", Type.INT, false),
    DURATION_MS("duration_ms", Type.FLOAT, true),
    RTT_MS("rtt_ms", Type.FLOAT, false),
    UPSTREAM_MS("upstream_ms", Type.FLOAT, false),
    CLIENT_IP("client_ip", Type.IP, false),
    USER_AGENT("user_agent", Type.STRING, false),
    EDGE("edge", Type.STRING, false),
    PROTOCOL("protocol", Type.STRING, false);

    enum Type { STRING, INT, FLOAT, TIMESTAMP, IP }

    final String json;
    final Type type;
    final boolean required;
    /** The name as JSON bytes: "name": */
    final byte[] key;

    Field(String json, Type type, boolean required) {
        this.json = json;
        this.type = type;
        this.required = required;
        this.key = ("\"" + json + "\":").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }

    private static final Map<String, Field> BY_NAME = new HashMap<>();

    static {
        for (Field f : values()) {
            BY_NAME.put(f.json, f);
        }
    }

    /** The field named name, or null. */
    static Field byName(String name) {
        return BY_NAME.get(name);
    }
}
