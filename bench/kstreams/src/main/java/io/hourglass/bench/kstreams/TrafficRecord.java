package io.hourglass.bench.kstreams;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.HashSet;
import java.util.Set;

/**
 * One traffic record, decoded with Jackson's streaming parser and validated by
 * the rules of internal/record's Decode (required fields, types, ranges,
 * lengths, tenant and method syntax, client IP canonical form, at most 64
 * unknown keys). A record that fails is reported by {@link Invalid} with the
 * code of its first problem found (the router's DLQ reason may name another
 * problem of the same record: Go sorts them).
 */
final class TrafficRecord {
    static final long MAX_BYTES = 1L << 40;
    static final double MAX_MILLIS = 86_400_000;
    static final int MAX_UNKNOWN_FIELDS = 64;

    long epochSecond;
    int nano;
    final String[] text = new String[Field.values().length]; // string and IP fields; null: absent
    long status, bytesIn, bytesOut;
    double durationMs, rttMs, upstreamMs;
    boolean hasRtt, hasUpstream;

    private byte[] timestampJson; // the timestamp as the projection writes it, made once

    /** A record that does not decode or validate: code is internal/record's Code. */
    static final class Invalid extends Exception {
        final String code;

        Invalid(String code, String message) {
            super(message, null, false, false);
            this.code = code;
        }
    }

    private static final JsonFactory JSON = new JsonFactory();

    static TrafficRecord decode(byte[] data) throws Invalid {
        TrafficRecord r = new TrafficRecord();
        boolean[] present = new boolean[Field.values().length];
        Set<String> unknown = null;
        try (JsonParser p = JSON.createParser(data)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new Invalid("not_object", "a record must be a JSON object");
            }
            String name;
            while ((name = p.nextFieldName()) != null) {
                JsonToken t = p.nextToken();
                Field f = Field.byName(name);
                if (f == null) {
                    p.skipChildren();
                    if (unknown == null) {
                        unknown = new HashSet<>();
                    }
                    unknown.add(name);
                    if (unknown.size() > MAX_UNKNOWN_FIELDS) {
                        throw new Invalid("too_many_fields", "more than 64 unknown keys");
                    }
                    continue;
                }
                if (t == JsonToken.VALUE_NULL) {
                    present[f.ordinal()] = false; // absent: a required field is then missing
                    r.clear(f);
                    continue;
                }
                present[f.ordinal()] = true;
                r.set(f, p, t);
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                throw new Invalid("malformed_json", "not valid JSON");
            }
        } catch (IOException e) { // Jackson's parse errors (JsonProcessingException)
            throw new Invalid("malformed_json", e.getMessage());
        }
        for (Field f : Field.values()) {
            if (f.required && !present[f.ordinal()]) {
                throw new Invalid("missing", f.json + ": required field is missing");
            }
        }
        r.check();
        return r;
    }

    private void set(Field f, JsonParser p, JsonToken t) throws IOException, Invalid {
        switch (f.type) {
            case STRING, TIMESTAMP, IP -> {
                if (t != JsonToken.VALUE_STRING) {
                    skip(p, t);
                    throw new Invalid("wrong_type", f.json + ": must be a string");
                }
                String s = p.getText();
                switch (f) {
                    case TIMESTAMP -> parseTimestamp(s);
                    case CLIENT_IP -> text[f.ordinal()] = canonicalIP(s);
                    default -> text[f.ordinal()] = s;
                }
            }
            case INT -> {
                if (t != JsonToken.VALUE_NUMBER_INT) {
                    skip(p, t);
                    throw new Invalid("wrong_type", f.json + ": must be an integer");
                }
                if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                    throw new Invalid("out_of_range", f.json + ": integer out of the 64-bit range");
                }
                long v = p.getLongValue();
                switch (f) {
                    case STATUS -> {
                        if (v < 100 || v > 599) {
                            throw new Invalid("out_of_range", "status: must be an HTTP status code, 100-599");
                        }
                        status = v;
                    }
                    case BYTES_IN -> bytesIn = v;
                    default -> bytesOut = v;
                }
            }
            case FLOAT -> {
                if (t != JsonToken.VALUE_NUMBER_INT && t != JsonToken.VALUE_NUMBER_FLOAT) {
                    skip(p, t);
                    throw new Invalid("wrong_type", f.json + ": must be a number");
                }
                double v = p.getDoubleValue();
                if (Double.isInfinite(v)) {
                    throw new Invalid("out_of_range", f.json + ": number too large");
                }
                switch (f) {
                    case DURATION_MS -> durationMs = v;
                    case RTT_MS -> {
                        rttMs = v;
                        hasRtt = true;
                    }
                    default -> {
                        upstreamMs = v;
                        hasUpstream = true;
                    }
                }
            }
        }
    }

    /** Forgets a field's value: a later null of a repeated key wins, as in Go. */
    private void clear(Field f) {
        switch (f) {
            case TIMESTAMP -> {
                epochSecond = 0;
                nano = 0;
            }
            case STATUS -> status = 0;
            case BYTES_IN -> bytesIn = 0;
            case BYTES_OUT -> bytesOut = 0;
            case DURATION_MS -> durationMs = 0;
            case RTT_MS -> hasRtt = false;
            case UPSTREAM_MS -> hasUpstream = false;
            default -> text[f.ordinal()] = null;
        }
    }

    private static void skip(JsonParser p, JsonToken t) throws IOException {
        if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
            p.skipChildren();
        }
    }

    /** The value rules of record.check, for a decoded record. */
    private void check() throws Invalid {
        int year = LocalDateTime.ofEpochSecond(epochSecond, 0, ZoneOffset.UTC).getYear();
        if (year < 1970 || year > 9999) {
            throw new Invalid("out_of_range", "timestamp: year must be 1970-9999");
        }
        String tenant = text[Field.TENANT.ordinal()];
        if (tenant == null || tenant.isEmpty()) {
            throw new Invalid("missing", "tenant: required field is missing");
        }
        if (tenant.length() > 63) {
            throw new Invalid("too_long", "tenant: at most 63 characters");
        }
        for (int i = 0; i < tenant.length(); i++) {
            char c = tenant.charAt(i);
            if (!(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')) {
                throw new Invalid("invalid_format", "tenant: only a-z, 0-9 and '-' allowed");
            }
        }
        String method = text[Field.METHOD.ordinal()];
        if (method == null || method.isEmpty()) {
            throw new Invalid("missing", "method: required field is missing");
        }
        if (utf8Len(method) > 32) {
            throw new Invalid("too_long", "method: at most 32 bytes");
        }
        for (int i = 0; i < method.length(); i++) {
            char c = method.charAt(i);
            if (!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || "!#$%&'*+-.^_`|~".indexOf(c) >= 0)) {
                throw new Invalid("invalid_format", "method: must be an HTTP token");
            }
        }
        String scheme = text[Field.SCHEME.ordinal()];
        if (scheme != null && !scheme.isEmpty() && !scheme.equals("http") && !scheme.equals("https")) {
            throw new Invalid("invalid_format", "scheme: must be http or https");
        }
        String path = text[Field.PATH.ordinal()];
        if (path != null && !path.isEmpty()) {
            if (utf8Len(path) > 8 << 10) {
                throw new Invalid("too_long", "path: at most 8 KiB");
            }
            if (path.charAt(0) != '/' && !path.equals("*")) {
                throw new Invalid("invalid_format", "path: must start with '/'");
            }
            if (path.indexOf('?') >= 0) {
                throw new Invalid("invalid_format", "path: must not contain a query string");
            }
        }
        if (bytesIn < 0 || bytesIn > MAX_BYTES || bytesOut < 0 || bytesOut > MAX_BYTES) {
            throw new Invalid("out_of_range", "bytes: must be 0-1099511627776 (1 TiB)");
        }
        if (!millis(durationMs) || hasRtt && !millis(rttMs) || hasUpstream && !millis(upstreamMs)) {
            throw new Invalid("out_of_range", "milliseconds: must be a finite number 0-86400000");
        }
        checkLen(Field.REQUEST_ID, 128);
        checkLen(Field.HOST, 255);
        checkLen(Field.USER_AGENT, 1 << 10);
        checkLen(Field.EDGE, 64);
        checkLen(Field.PROTOCOL, 16);
    }

    private static boolean millis(double v) {
        return v >= 0 && v <= MAX_MILLIS; // false for NaN
    }

    private void checkLen(Field f, int max) throws Invalid {
        String s = text[f.ordinal()];
        if (s != null && utf8Len(s) > max) {
            throw new Invalid("too_long", f.json + ": at most " + max + " bytes");
        }
    }

    private static int utf8Len(String s) {
        int n = s.length();
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) >= 0x80) {
                return s.getBytes(StandardCharsets.UTF_8).length;
            }
        }
        return n;
    }

    /**
     * Parses an RFC 3339 timestamp as Go's time.Parse(time.RFC3339Nano, s):
     * YYYY-MM-DDTHH:MM:SS, an optional fraction (. or , then digits, past the
     * ninth ignored), then Z or ±HH:MM.
     */
    private void parseTimestamp(String s) throws Invalid {
        try {
            int n = s.length();
            if (n < 20 || s.charAt(4) != '-' || s.charAt(7) != '-' || s.charAt(10) != 'T' || s.charAt(13) != ':' || s.charAt(16) != ':') {
                throw new NumberFormatException();
            }
            int year = num(s, 0, 4), month = num(s, 5, 7), day = num(s, 8, 10);
            int hour = num(s, 11, 13), min = num(s, 14, 16), sec = num(s, 17, 19);
            int i = 19;
            int nanos = 0;
            if (i < n && (s.charAt(i) == '.' || s.charAt(i) == ',') && i + 1 < n && Character.isDigit(s.charAt(i + 1))) {
                int digits = 0;
                for (i++; i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9'; i++) {
                    if (digits < 9) {
                        nanos = nanos * 10 + (s.charAt(i) - '0');
                        digits++;
                    }
                }
                for (; digits < 9; digits++) {
                    nanos *= 10;
                }
            }
            int offset;
            if (i == n - 1 && s.charAt(i) == 'Z') {
                offset = 0;
            } else if (i == n - 6 && (s.charAt(i) == '+' || s.charAt(i) == '-') && s.charAt(i + 3) == ':') {
                int oh = num(s, i + 1, i + 3), om = num(s, i + 4, i + 6);
                if (oh > 23 || om > 59) {
                    throw new NumberFormatException();
                }
                offset = (oh * 3600 + om * 60) * (s.charAt(i) == '-' ? -1 : 1);
            } else {
                throw new NumberFormatException();
            }
            epochSecond = LocalDateTime.of(year, month, day, hour, min, sec).toEpochSecond(ZoneOffset.UTC) - offset;
            nano = nanos;
        } catch (NumberFormatException | DateTimeException e) {
            throw new Invalid("invalid_format", "timestamp: must be an RFC 3339 timestamp");
        }
    }

    private static int num(String s, int from, int to) {
        int v = 0;
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                throw new NumberFormatException();
            }
            v = v * 10 + (c - '0');
        }
        return v;
    }

    /**
     * The canonical text of an IP address, as Go's netip.ParseAddr(s).Unmap().String():
     * IPv4 in dotted decimal without leading zeros, IPv6 per RFC 5952, an
     * IPv4-mapped IPv6 address as IPv4; no zone.
     */
    static String canonicalIP(String s) throws Invalid {
        if (s.indexOf(':') < 0) {
            if (validIPv4(s)) {
                return s; // dotted decimal without leading zeros is canonical
            }
            throw new Invalid("invalid_format", "client_ip: must be an IPv4 or IPv6 address");
        }
        if (s.indexOf('%') >= 0) {
            throw new Invalid("invalid_format", "client_ip: must not carry an IPv6 zone");
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(c == ':' || c == '.' || Character.digit(c, 16) >= 0 && c < 0x80)) {
                throw new Invalid("invalid_format", "client_ip: must be an IPv4 or IPv6 address");
            }
        }
        byte[] a;
        try {
            a = InetAddress.getByName(s).getAddress(); // a literal with ':': parsed, never looked up
        } catch (UnknownHostException e) {
            throw new Invalid("invalid_format", "client_ip: must be an IPv4 or IPv6 address");
        }
        if (a.length == 4) { // Java unmaps ::ffff:a.b.c.d itself
            return (a[0] & 0xFF) + "." + (a[1] & 0xFF) + "." + (a[2] & 0xFF) + "." + (a[3] & 0xFF);
        }
        int[] g = new int[8];
        for (int i = 0; i < 8; i++) {
            g[i] = (a[2 * i] & 0xFF) << 8 | a[2 * i + 1] & 0xFF;
        }
        int bestAt = -1, bestLen = 1; // the longest run of two or more zero groups, the first on a tie
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && g[j] == 0) {
                j++;
            }
            if (j - i > bestLen) {
                bestAt = i;
                bestLen = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        StringBuilder out = new StringBuilder(39);
        for (int i = 0; i < 8; i++) {
            if (i == bestAt) {
                out.append("::");
                i += bestLen - 1;
                continue;
            }
            if (out.length() > 0 && out.charAt(out.length() - 1) != ':') {
                out.append(':');
            }
            out.append(Integer.toHexString(g[i]));
        }
        return out.toString();
    }

    private static boolean validIPv4(String s) {
        int fields = 0, i = 0, n = s.length();
        while (true) {
            int start = i, v = 0;
            while (i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
                v = v * 10 + (s.charAt(i) - '0');
                i++;
                if (i - start > 3) {
                    return false;
                }
            }
            if (i == start || v > 255 || i - start > 1 && s.charAt(start) == '0') {
                return false;
            }
            fields++;
            if (i == n) {
                return fields == 4;
            }
            if (s.charAt(i) != '.' || fields == 4) {
                return false;
            }
            i++;
        }
    }

    // --- access, as internal/record's Number and Text -------------------------

    /** Whether a numeric field is present (status when set, byte counters and duration always). */
    boolean hasNumber(Field f) {
        return switch (f) {
            case STATUS -> status != 0;
            case BYTES_IN, BYTES_OUT, DURATION_MS -> true;
            case RTT_MS -> hasRtt;
            case UPSTREAM_MS -> hasUpstream;
            default -> false;
        };
    }

    double number(Field f) {
        return switch (f) {
            case STATUS -> status;
            case BYTES_IN -> bytesIn;
            case BYTES_OUT -> bytesOut;
            case DURATION_MS -> durationMs;
            case RTT_MS -> rttMs;
            case UPSTREAM_MS -> upstreamMs;
            default -> 0;
        };
    }

    /** A string or IP field; null when absent or empty. */
    String text(Field f) {
        String s = text[f.ordinal()];
        return s == null || s.isEmpty() ? null : s;
    }

    String tenant() {
        return text[Field.TENANT.ordinal()];
    }

    /** The timestamp as projected: quoted RFC 3339, UTC, nanoseconds without trailing zeros. */
    byte[] timestampJson() {
        if (timestampJson == null) {
            GoJson.Buf b = new GoJson.Buf(40);
            GoJson.appendTimestamp(b, epochSecond, nano);
            timestampJson = b.toBytes();
        }
        return timestampJson;
    }
}
