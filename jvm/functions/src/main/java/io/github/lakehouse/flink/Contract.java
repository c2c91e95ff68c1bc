package io.github.lakehouse.flink;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A domain's event contract, checked in one pass: the verdicts of the Python contract
 * ({@code lakehouse.events.contracts.check_record}: fastjsonschema decides, the reason is the first
 * failure in the order missing field, wrong type, other keyword, extra property), record by record.
 *
 * <p>Built from the spec {@code lakehouse.events.contract_jvm.spec} writes from the domain's YAML:
 * {@code {"schema": <JSON Schema>, "max_message_bytes": n, "event_time_field": f, "dedup_key": k}}.
 * The Python side has already refused keywords this class does not implement.
 */
final class Contract {
    /** fastjsonschema's own date-time format, with Python's \Z (end of input) spelled as Java's \z. */
    static final Pattern DATE_TIME = Pattern.compile(
        "^(?:\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]"
            + "|1\\d|2[0-8]))|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)(t|T)"
            + "(?:[01]\\d|2[0-3]):[0-5]\\d:(?:[0-5]\\d|60)(?:\\.\\d+)?(?:[+-](?:[01]\\d|2[0-3]):[0-5]\\d|[+-](?:[01]\\d|2[0-3])"
            + "[0-5]\\d|z|Z)\\z",
        Pattern.UNICODE_CHARACTER_CLASS); // Python's \d on str is any Unicode digit
    static final ObjectMapper MAPPER = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** The outcome for one record: reason null when valid; payload null when it is the value's own UTF-8. */
    record Verdict(String reason, String detail, String payload, String eventId, Instant eventTime) {}

    final int maxBytes;
    final String timeField;
    final String dedupKey;
    final List<String> required = new ArrayList<>();
    final List<Property> properties = new ArrayList<>();
    final Set<String> declared = new HashSet<>();
    final boolean additional;

    Contract(String specJson) {
        try {
            JsonNode spec = MAPPER.readTree(specJson);
            JsonNode schema = spec.get("schema");
            maxBytes = spec.get("max_message_bytes").asInt();
            timeField = spec.get("event_time_field").asText();
            dedupKey = spec.get("dedup_key").asText();
            schema.path("required").forEach(name -> required.add(name.asText()));
            Iterator<String> names = schema.path("properties").fieldNames();
            while (names.hasNext()) {
                String name = names.next();
                properties.add(new Property(name, schema.get("properties").get(name)));
                declared.add(name);
            }
            additional = schema.path("additionalProperties").asBoolean(true);
        } catch (Exception error) {
            throw new IllegalArgumentException("not a contract spec: " + error.getMessage(), error);
        }
    }

    static Verdict reject(String reason, String detail, String payload) {
        return new Verdict(reason, detail, payload, null, null);
    }

    Verdict check(byte[] value) {
        if (value == null || value.length == 0) {
            return reject("empty", "the record has no value", null);
        }
        if (value.length > maxBytes) {
            return reject("oversized", value.length + " bytes > max_message_bytes " + maxBytes, new String(value, StandardCharsets.UTF_8));
        }
        String text;
        try {
            CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
            CharBuffer chars = strict.decode(ByteBuffer.wrap(value));
            text = chars.toString();
        } catch (CharacterCodingException error) {
            return reject("invalid_encoding", "not UTF-8: " + error, new String(value, StandardCharsets.UTF_8));
        }
        JsonNode event;
        try {
            event = MAPPER.readTree(text);
        } catch (Exception error) {
            return reject("invalid_json", "not JSON: " + firstLine(error.getMessage()), null);
        }
        if (event == null || event.isMissingNode()) {
            return reject("invalid_json", "not JSON: no value", null);
        }
        if (!event.isObject()) {
            return reject("not_an_object", "JSON " + event.getNodeType().name().toLowerCase() + ", expected an object", null);
        }
        Verdict violation = violation(event);
        if (violation != null) {
            return violation;
        }
        Instant time = EventTime.parse(event.get(timeField).asText());
        if (time == null) {
            return reject("invalid_event_time", timeField + ": not an ISO 8601 time with an offset", null);
        }
        JsonNode key = event.get(dedupKey);
        return new Verdict(null, null, null, key.isTextual() ? key.asText() : key.toString(), time);
    }

    /** The first failure in the Python contract's order, or null. */
    private Verdict violation(JsonNode event) {
        for (String name : required) {
            if (!event.has(name)) {
                return reject("missing_field", name + ": required", null);
            }
        }
        for (Property property : properties) {
            JsonNode node = event.get(property.name);
            if (node != null && !property.hasType(node)) {
                return reject("wrong_type", property.name + ": not of type " + String.join(" or ", property.types), null);
            }
        }
        for (Property property : properties) {
            JsonNode node = event.get(property.name);
            String failed = node == null ? null : property.violation(node);
            if (failed != null) {
                return reject("contract_violation", property.name + ": " + failed, null);
            }
        }
        if (!additional) {
            Iterator<String> names = event.fieldNames();
            while (names.hasNext()) {
                String name = names.next();
                if (!declared.contains(name)) {
                    return reject("contract_violation", "additional property " + name, null);
                }
            }
        }
        return null;
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "";
        }
        int end = message.indexOf('\n');
        return end < 0 ? message : message.substring(0, end);
    }

    /** One declared property and the keywords it carries (fastjsonschema's semantics, draft 2020-12). */
    static final class Property {
        final String name;
        final List<String> types = new ArrayList<>();
        final Integer minLength;
        final Integer maxLength;
        final Pattern pattern;
        final String patternText;
        final boolean dateTime;
        final JsonNode minimum, maximum, exclusiveMinimum, exclusiveMaximum;
        final List<JsonNode> choices;

        Property(String name, JsonNode spec) {
            this.name = name;
            JsonNode type = spec.get("type");
            if (type != null && type.isArray()) {
                type.forEach(t -> types.add(t.asText()));
            } else if (type != null) {
                types.add(type.asText());
            }
            minLength = spec.has("minLength") ? spec.get("minLength").asInt() : null;
            maxLength = spec.has("maxLength") ? spec.get("maxLength").asInt() : null;
            patternText = spec.has("pattern") ? spec.get("pattern").asText() : null;
            pattern = patternText == null ? null : Pattern.compile(javaPattern(patternText), Pattern.UNICODE_CHARACTER_CLASS);
            dateTime = "date-time".equals(spec.path("format").asText(null));
            minimum = spec.get("minimum");
            maximum = spec.get("maximum");
            exclusiveMinimum = spec.get("exclusiveMinimum");
            exclusiveMaximum = spec.get("exclusiveMaximum");
            if (spec.has("enum")) {
                choices = new ArrayList<>();
                spec.get("enum").forEach(choices::add);
            } else {
                choices = null;
            }
        }

        /** As fastjsonschema: every unescaped $ means the end of input (\Z; Java spells it \z). */
        static String javaPattern(String python) {
            return python.replaceAll("(?<!\\\\)\\$", "\\\\z").replace("\\Z", "\\z");
        }

        boolean hasType(JsonNode node) {
            if (types.isEmpty()) {
                return true;
            }
            for (String type : types) {
                boolean matches = switch (type) {
                    case "string" -> node.isTextual();
                    case "number" -> node.isNumber();
                    case "integer" -> node.isIntegralNumber()
                        || (node.isFloatingPointNumber() && Double.isFinite(node.doubleValue())
                            && node.doubleValue() == Math.rint(node.doubleValue()));
                    case "boolean" -> node.isBoolean();
                    case "null" -> node.isNull();
                    case "array" -> node.isArray();
                    case "object" -> node.isObject();
                    default -> false;
                };
                if (matches) {
                    return true;
                }
            }
            return false;
        }

        /** The first keyword other than type that the value fails, or null. */
        String violation(JsonNode node) {
            if (node.isTextual()) {
                String text = node.asText();
                int points = text.codePointCount(0, text.length());
                if (minLength != null && points < minLength) {
                    return "shorter than " + minLength;
                }
                if (maxLength != null && points > maxLength) {
                    return "longer than " + maxLength;
                }
                if (pattern != null && !pattern.matcher(text).find()) {
                    return "does not match " + patternText;
                }
                if (dateTime && !DATE_TIME.matcher(text).find()) {
                    return "is not a date-time";
                }
            }
            if (node.isNumber()) {
                if (minimum != null && compare(node, minimum) < 0) {
                    return "below the minimum " + minimum;
                }
                if (maximum != null && compare(node, maximum) > 0) {
                    return "above the maximum " + maximum;
                }
                if (exclusiveMinimum != null && compare(node, exclusiveMinimum) <= 0) {
                    return "not above " + exclusiveMinimum;
                }
                if (exclusiveMaximum != null && compare(node, exclusiveMaximum) >= 0) {
                    return "not below " + exclusiveMaximum;
                }
            }
            if (choices != null && choices.stream().noneMatch(choice -> equal(node, choice))) {
                return "not one of " + choices;
            }
            return null;
        }

        /** Python's comparison of two numbers: exact between ints and floats, infinities included. */
        static int compare(JsonNode a, JsonNode b) {
            int infiniteA = infinity(a), infiniteB = infinity(b);
            if (infiniteA != 0 || infiniteB != 0) {
                return Integer.compare(infiniteA, infiniteB);
            }
            return exact(a).compareTo(exact(b));
        }

        /** +1 or -1 for a float that is infinite (what Python reads 1e400 as), else 0. */
        private static int infinity(JsonNode n) {
            return n.isFloatingPointNumber() && Double.isInfinite(n.doubleValue()) ? (n.doubleValue() > 0 ? 1 : -1) : 0;
        }

        private static BigDecimal exact(JsonNode n) {
            return n.isFloatingPointNumber() ? new BigDecimal(n.doubleValue()) : new BigDecimal(n.bigIntegerValue());
        }

        /** fastjsonschema's enum: booleans by identity, numbers (not booleans) by value, else equal JSON. */
        static boolean equal(JsonNode value, JsonNode choice) {
            if (choice.isNumber()) {
                return value.isNumber() && !(value.isFloatingPointNumber() && Double.isNaN(value.doubleValue()))
                    && compare(value, choice) == 0;
            }
            return value.equals(choice);
        }
    }
}
