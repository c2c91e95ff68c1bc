package io.github.lakehouse.flink;

import java.time.Instant;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code lakehouse_watermark_time(`value`, 'event_time')}: the event time a raw record value
 * carries in its top-level field, to the millisecond, for the source table's watermark (it runs
 * before any check, so it must be cheap and never fail): epoch when the value is no JSON object
 * or has no such time, which never moves the watermark forward.
 */
public class WatermarkTime extends ScalarFunction {
    private static final Instant NONE = Instant.EPOCH;
    private static final JsonFactory JSON = new JsonFactory();

    public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(byte[] value, String field) {
        if (value == null || value.length == 0) {
            return NONE;
        }
        String found = null;
        try (JsonParser parser = JSON.createParser(value)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return NONE;
            }
            // every top-level field: a key given twice counts with its last value, as in Python
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                boolean wanted = field.equals(parser.currentName());
                JsonToken token = parser.nextToken();
                if (wanted) {
                    found = token == JsonToken.VALUE_STRING ? parser.getText() : null;
                } else {
                    parser.skipChildren();
                }
            }
        } catch (Exception malformed) {
            // what the parser read up to the error still counts (a valid record never gets here)
        }
        Instant time = found == null ? null : EventTime.parse(found);
        return time == null ? NONE : Instant.ofEpochMilli(time.toEpochMilli());
    }
}
