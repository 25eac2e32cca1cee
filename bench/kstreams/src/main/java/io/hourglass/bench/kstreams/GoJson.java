package io.hourglass.bench.kstreams;

import com.fasterxml.jackson.core.io.schubfach.DoubleToDecimal;
import java.util.Arrays;

/**
 * JSON values written byte for byte as the router writes them
 * (internal/record's AppendProjection): floats as Go's
 * strconv.AppendFloat(v, 'g', -1, 64), timestamps as Go's RFC 3339 with
 * nanoseconds in UTC, strings as Go's encoding/json (HTML-safe) escapes them.
 */
final class GoJson {
    private GoJson() {}

    /** A growable byte buffer. */
    static final class Buf {
        private byte[] b;
        private int n;

        Buf(int capacity) {
            b = new byte[capacity];
        }

        void put(int c) {
            if (n == b.length) {
                b = Arrays.copyOf(b, 2 * b.length);
            }
            b[n++] = (byte) c;
        }

        void put(byte[] bs) {
            if (n + bs.length > b.length) {
                b = Arrays.copyOf(b, Math.max(2 * b.length, n + bs.length));
            }
            System.arraycopy(bs, 0, b, n, bs.length);
            n += bs.length;
        }

        /** Appends ASCII characters. */
        void ascii(CharSequence s) {
            for (int i = 0; i < s.length(); i++) {
                put(s.charAt(i));
            }
        }

        void digits(long v, int width) {
            String s = Long.toString(v);
            for (int i = s.length(); i < width; i++) {
                put('0');
            }
            ascii(s);
        }

        byte[] toBytes() {
            return Arrays.copyOf(b, n);
        }
    }

    /**
     * Appends v as Go's strconv.AppendFloat(dst, v, 'g', -1, 64): the shortest
     * decimal that reads back as v (Schubfach, as Go's shortest formatting),
     * in exponent form (at least two exponent digits) when the decimal
     * exponent is below -4 or at least 6 (Go's rule for the shortest 'g').
     * For finite v only.
     */
    static void appendFloat(Buf b, double v) {
        if (v == 0) {
            b.ascii(1 / v < 0 ? "-0" : "0");
            return;
        }
        // Java's form: [-]I.F or [-]I.FE[-]X, the shortest digits.
        String s = DoubleToDecimal.toString(v);
        int i = 0;
        if (s.charAt(0) == '-') {
            b.put('-');
            i = 1;
        }
        int e = s.indexOf('E');
        int end = e < 0 ? s.length() : e;
        char[] d = new char[end - i];
        int nd = 0;
        int dp = -1; // digits before the decimal point
        for (int k = i; k < end; k++) {
            char c = s.charAt(k);
            if (c == '.') {
                dp = nd;
            } else {
                d[nd++] = c;
            }
        }
        if (dp < 0) {
            dp = nd;
        }
        if (e >= 0) {
            dp += Integer.parseInt(s, e + 1, s.length(), 10);
        }
        int lo = 0;
        while (lo < nd && d[lo] == '0') {
            lo++;
            dp--;
        }
        int hi = nd;
        while (hi > lo && d[hi - 1] == '0') {
            hi--;
        }
        int n = hi - lo; // value = 0.d[lo..hi) × 10^dp
        if (n == 2) {
            // Java writes at least two digits and, near the smallest subnormal,
            // a two-digit decimal closer to v where one digit reads back as v
            // too (4.9E-324, 9.9E-324): Go writes the one digit (5e-324, 1e-323).
            int two = (d[lo] - '0') * 10 + d[lo + 1] - '0';
            int one = -1;
            for (int c = two / 10; c <= two / 10 + 1; c++) {
                if (Double.parseDouble(c + "e" + (dp - 1)) == Math.abs(v) && (one < 0 || Math.abs(c * 10 - two) < Math.abs(one * 10 - two))) {
                    one = c;
                }
            }
            if (one == 10) {
                one = 1;
                dp++;
            }
            if (one >= 0) {
                d[lo] = (char) ('0' + one);
                hi = lo + 1;
                n = 1;
            }
        }
        int x = dp - 1;
        if (x < -4 || x >= 6) {
            b.put(d[lo]);
            if (n > 1) {
                b.put('.');
                for (int k = lo + 1; k < hi; k++) {
                    b.put(d[k]);
                }
            }
            b.put('e');
            b.put(x < 0 ? '-' : '+');
            b.digits(Math.abs(x), 2);
        } else if (dp <= 0) {
            b.ascii("0.");
            for (int k = dp; k < 0; k++) {
                b.put('0');
            }
            for (int k = lo; k < hi; k++) {
                b.put(d[k]);
            }
        } else {
            for (int k = 0; k < Math.max(dp, n); k++) {
                if (k == dp) {
                    b.put('.');
                }
                b.put(k < n ? d[lo + k] : '0');
            }
        }
    }

    /**
     * Appends the instant (epoch seconds and nanoseconds) as Go's
     * t.UTC().AppendFormat(dst, time.RFC3339Nano), quoted: fraction without
     * trailing zeros and omitted when zero, "Z". Years 0-9999 only.
     */
    static void appendTimestamp(Buf b, long epochSecond, int nano) {
        long days = Math.floorDiv(epochSecond, 86400);
        long secs = Math.floorMod(epochSecond, 86400);
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        long z = days + 719468;
        long era = Math.floorDiv(z, 146097);
        long doe = z - era * 146097;
        long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        long day = doy - (153 * mp + 2) / 5 + 1;
        long month = mp < 10 ? mp + 3 : mp - 9;
        long year = yoe + era * 400 + (month <= 2 ? 1 : 0);
        b.put('"');
        b.digits(year, 4);
        b.put('-');
        b.digits(month, 2);
        b.put('-');
        b.digits(day, 2);
        b.put('T');
        b.digits(secs / 3600, 2);
        b.put(':');
        b.digits(secs / 60 % 60, 2);
        b.put(':');
        b.digits(secs % 60, 2);
        if (nano != 0) {
            b.put('.');
            int digits = 9;
            int f = nano;
            while (f % 10 == 0) {
                f /= 10;
                digits--;
            }
            b.digits(f, digits);
        }
        b.put('Z');
        b.put('"');
    }

    private static final byte[] HEX = "0123456789abcdef".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    /**
     * Appends s as a JSON string as Go's encoding/json writes it: \" \\ \b \f
     * \n \r \t, other control characters and &lt; &gt; &amp; U+2028 U+2029 as
     * \\u00xx escapes, everything else as UTF-8 (an unpaired surrogate as
     * U+FFFD, as Go decodes one).
     */
    static void appendString(Buf b, String s) {
        b.put('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                switch (c) {
                    case '"' -> b.ascii("\\\"");
                    case '\\' -> b.ascii("\\\\");
                    case '\b' -> b.ascii("\\b");
                    case '\f' -> b.ascii("\\f");
                    case '\n' -> b.ascii("\\n");
                    case '\r' -> b.ascii("\\r");
                    case '\t' -> b.ascii("\\t");
                    default -> {
                        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                            unicodeEscape(b, c);
                        } else {
                            b.put(c);
                        }
                    }
                }
                continue;
            }
            if (c == '\u2028' || c == '\u2029') {
                unicodeEscape(b, c);
                continue;
            }
            int cp = c;
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                cp = Character.toCodePoint(c, s.charAt(++i));
            } else if (Character.isSurrogate(c)) {
                cp = 0xFFFD;
            }
            if (cp < 0x800) {
                b.put(0xC0 | cp >> 6);
                b.put(0x80 | cp & 0x3F);
            } else if (cp < 0x10000) {
                b.put(0xE0 | cp >> 12);
                b.put(0x80 | cp >> 6 & 0x3F);
                b.put(0x80 | cp & 0x3F);
            } else {
                b.put(0xF0 | cp >> 18);
                b.put(0x80 | cp >> 12 & 0x3F);
                b.put(0x80 | cp >> 6 & 0x3F);
                b.put(0x80 | cp & 0x3F);
            }
        }
        b.put('"');
    }

    private static void unicodeEscape(Buf b, char c) {
        b.ascii("\\u");
        b.put(HEX[c >> 12 & 0xF]);
        b.put(HEX[c >> 8 & 0xF]);
        b.put(HEX[c >> 4 & 0xF]);
        b.put(HEX[c & 0xF]);
    }
}
