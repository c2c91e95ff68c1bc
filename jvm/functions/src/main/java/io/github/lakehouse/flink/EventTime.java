package io.github.lakehouse.flink;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * An event time as Python reads it ({@code lakehouse.events.contracts.parse_event_time}:
 * {@code datetime.fromisoformat} after Z becomes +00:00): yyyy-MM-dd, one separator character,
 * HH:mm:ss, an optional fraction (its first six digits count, as in Python), then Z or an offset
 * of +hh:mm or +hhmm. What Python refuses (second 60, a lowercase z, non-ASCII digits, no offset)
 * is null.
 */
final class EventTime {
    private EventTime() {}

    static Instant parse(String text) {
        int n = text.length();
        if (n < 20 || text.charAt(4) != '-' || text.charAt(7) != '-' || text.charAt(13) != ':' || text.charAt(16) != ':') {
            return null;
        }
        int year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
        int hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
        if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
            return null;
        }
        int at = 19, nanos = 0;
        if (at < n && text.charAt(at) == '.') {
            int start = ++at;
            while (at < n && isDigit(text.charAt(at))) {
                if (at - start < 6) {
                    nanos = nanos * 10 + (text.charAt(at) - '0');
                }
                at++;
            }
            if (at == start) {
                return null;
            }
            for (int scale = Math.min(at - start, 6); scale < 9; scale++) {
                nanos *= 10;
            }
        }
        int offsetSeconds;
        String zone = text.substring(at);
        if (zone.equals("Z")) {
            offsetSeconds = 0;
        } else if ((zone.length() == 6 && zone.charAt(3) == ':') || zone.length() == 5) {
            char sign = zone.charAt(0);
            int hours = digits(zone, 1, 2), minutes = digits(zone, zone.length() - 2, 2);
            if ((sign != '+' && sign != '-') || hours < 0 || minutes < 0 || hours > 23 || minutes > 59) {
                return null;
            }
            offsetSeconds = (sign == '-' ? -1 : 1) * (hours * 3600 + minutes * 60);
        } else {
            return null;
        }
        try {
            return LocalDateTime.of(year, month, day, hour, minute, second, nanos).toInstant(ZoneOffset.ofTotalSeconds(offsetSeconds));
        } catch (DateTimeException invalid) {
            return null;
        }
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    /** The ASCII digits at [from, from + count) as a number, or -1. */
    private static int digits(String text, int from, int count) {
        int value = 0;
        for (int i = from; i < from + count; i++) {
            char c = text.charAt(i);
            if (!isDigit(c)) {
                return -1;
            }
            value = value * 10 + (c - '0');
        }
        return value;
    }
}
