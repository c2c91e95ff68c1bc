package io.github.lakehouse.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.TableFunction;

/**
 * {@code LATERAL TABLE(lakehouse_check_contract(`value`, '<spec>'))}: one row per Kafka record
 * value with the contract's verdict: reason (null when valid), detail, payload (the value as
 * text), event_id (the dedup key) and event_time (UTC, to the microsecond; null unless valid).
 *
 * <p>The spec (see {@link Contract}) is a literal of the query, so one class serves every domain;
 * it is parsed on the first call and again only if another spec arrives. Rows are emitted in
 * Flink's internal format (no conversion per record); a valid UTF-8 payload is the record's own
 * bytes, not decoded and encoded again.
 */
@FunctionHint(output = @DataTypeHint(
    value = "ROW<reason STRING, detail STRING, payload STRING, event_id STRING, event_time TIMESTAMP_LTZ(6)>",
    bridgedTo = RowData.class))
public class CheckContract extends TableFunction<RowData> {
    private transient String specText;
    private transient Contract contract;

    public void eval(byte[] value, String spec) {
        if (spec != specText) {
            if (!spec.equals(specText)) {
                contract = new Contract(spec);
            }
            specText = spec;
        }
        Contract.Verdict verdict = contract.check(value);
        String detail = verdict.detail();
        if (detail != null && detail.length() > 500) {
            detail = detail.substring(0, 500);
        }
        StringData payload = verdict.payload() != null ? StringData.fromString(verdict.payload())
            : value == null ? null : StringData.fromBytes(value);
        collect(GenericRowData.of(
            StringData.fromString(verdict.reason()),
            StringData.fromString(detail),
            payload,
            StringData.fromString(verdict.eventId()),
            verdict.eventTime() == null ? null : TimestampData.fromInstant(verdict.eventTime())));
    }
}
