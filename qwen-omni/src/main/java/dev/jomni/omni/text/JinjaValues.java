package dev.jomni.omni.text;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Python value semantics for the template evaluator. Values are Java objects standing for Python
 * ones: {@code null} is None, {@link Undefined} is Jinja's undefined, {@code Long}/{@code Double}
 * are int/float, {@code String}, {@code Boolean}, {@code List} (list and tuple), {@code Map}
 * (dict, insertion-ordered), {@link Namespace}, and {@link Callable} for functions and methods.
 */
final class JinjaValues {
    private JinjaValues() {}

    /**
     * Jinja's default undefined: prints as nothing, is false, and fails on any other use with
     * Jinja2's own message ({@code 'x' is undefined}, {@code 'dict object' has no attribute 'x'},
     * {@code list object has no element 3}).
     */
    record Undefined(String name, String message) {
        Undefined(String name) {
            this(name, "'" + name + "' is undefined");
        }

        /** What {@code owner.name} gives when owner has neither that attribute nor that item. */
        static Undefined attribute(Object owner, String name) {
            return new Undefined(name, "'" + objectType(owner) + "' has no attribute '" + name + "'");
        }

        /** What {@code owner[key]} gives for a missing non-string key (an index past the end). */
        static Undefined element(Object owner, Object key) {
            return new Undefined(str(key), objectType(owner) + " has no element " + repr(key));
        }

        JinjaException error() {
            return new JinjaException(message);
        }
    }

    /** Jinja2's object_type_repr: "None", or the Python type as "dict object". */
    static String objectType(Object v) {
        return switch (v) {
            case null -> "None";
            case Namespace n -> "jinja2.utils.Namespace object";
            case Callable c -> "function object";
            default -> typeName(v) + " object";
        };
    }

    /** {@code namespace(...)}: the one object a template may assign attributes on. */
    static final class Namespace {
        final Map<String, Object> attributes = new LinkedHashMap<>();
    }

    /** A Python tuple: a list that prints as {@code (a, b)} and never equals a list. */
    static final class Tuple extends ArrayList<Object> {
        Tuple(Collection<?> items) {
            super(items);
        }
    }

    @FunctionalInterface
    interface Callable {
        Object call(List<Object> args, Map<String, Object> kwargs);
    }

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Undefined u -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0;
            case String s -> !s.isEmpty();
            case Collection<?> c -> !c.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            default -> true;
        };
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "NoneType";
            case Undefined u -> "Undefined";
            case Boolean b -> "bool";
            case Long l -> "int";
            case Double d -> "float";
            case String s -> "str";
            case Tuple t -> "tuple";
            case List<?> l -> "list";
            case Map<?, ?> m -> "dict";
            case Namespace n -> "Namespace";
            default -> "function";
        };
    }

    /** Python's {@code str(v)}; undefined prints as the empty string. */
    static String str(Object v) {
        return switch (v) {
            case null -> "None";
            case Undefined u -> "";
            case String s -> s;
            case Boolean b -> b ? "True" : "False";
            case Double d -> floatRepr(d);
            default -> repr(v);
        };
    }

    /** Python's {@code repr(v)}. */
    static String repr(Object v) {
        return switch (v) {
            case null -> "None";
            case Undefined u -> "";
            case String s -> stringRepr(s);
            case Boolean b -> b ? "True" : "False";
            case Long l -> l.toString();
            case Double d -> floatRepr(d);
            case List<?> list -> {
                boolean tuple = list instanceof Tuple;
                var sb = new StringBuilder(tuple ? "(" : "[");
                for (int i = 0; i < list.size(); i++) sb.append(i > 0 ? ", " : "").append(repr(list.get(i)));
                if (tuple && list.size() == 1) sb.append(',');
                yield sb.append(tuple ? ')' : ']').toString();
            }
            case Map<?, ?> map -> {
                var sb = new StringBuilder("{");
                boolean first = true;
                for (var e : map.entrySet()) {
                    sb.append(first ? "" : ", ").append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                    first = false;
                }
                yield sb.append('}').toString();
            }
            case Namespace n -> "<Namespace " + repr(n.attributes) + ">";
            default -> "<function>";
        };
    }

    private static String stringRepr(String s) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        var sb = new StringBuilder().append(quote);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c == quote) sb.append('\\').append(c);
                    else if (c < 0x20 || c == 0x7F) sb.append(String.format("\\x%02x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append(quote).toString();
    }

    /** Python's float repr: shortest round-trip digits, positional for exponents -4..15, else {@code 1e+16}. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        var bd = new BigDecimal(Double.toString(d));   // Java's shortest round-trip digits
        String digits = bd.unscaledValue().abs().toString().replaceAll("0+$", "");
        if (digits.isEmpty()) digits = "0";
        int exp = bd.precision() - bd.scale() - 1;      // decimal exponent of the first digit
        String sign = d < 0 ? "-" : "";
        if (exp >= -4 && exp < 16) {
            String plain = bd.abs().stripTrailingZeros().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double toDouble(Object v) {
        return switch (v) {
            case Long l -> l;
            case Double d -> d;
            case Boolean b -> b ? 1 : 0;
            case null, default -> throw new JinjaException("expected a number, found " + typeName(v));
        };
    }

    static long toLong(Object v) {
        return switch (v) {
            case Long l -> l;
            case Boolean b -> b ? 1 : 0;
            case Double d when d == Math.rint(d) -> d.longValue();
            case null, default -> throw new JinjaException("expected an integer, found " + typeName(v) + " " + repr(v));
        };
    }

    /** Python's {@code ==}. */
    static boolean eq(Object a, Object b) {
        if (a == null || b == null) return a == b;
        if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) return toDouble(a) == toDouble(b);
            return toLong(a) == toLong(b);
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size() || (x instanceof Tuple) != (y instanceof Tuple)) return false;
            for (int i = 0; i < x.size(); i++) if (!eq(x.get(i), y.get(i))) return false;
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) return false;
            for (var e : x.entrySet()) {
                if (!y.containsKey(e.getKey()) || !eq(e.getValue(), y.get(e.getKey()))) return false;
            }
            return true;
        }
        return a.equals(b);
    }

    /** Python's ordering for {@code < <= > >=}. */
    static int compare(Object a, Object b) {
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) return Double.compare(toDouble(a), toDouble(b));
            return Long.compare(toLong(a), toLong(b));
        }
        if (a instanceof String x && b instanceof String y) return x.compareTo(y);
        if (a instanceof List<?> x && b instanceof List<?> y) {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                if (!eq(x.get(i), y.get(i))) return compare(x.get(i), y.get(i));
            }
            return Integer.compare(x.size(), y.size());
        }
        throw new JinjaException("'<' not supported between instances of '" + typeName(a) + "' and '" + typeName(b) + "'");
    }

    /** Python's {@code a in b}. */
    static boolean contains(Object container, Object item) {
        return switch (container) {
            case String s -> {
                if (!(item instanceof String i)) throw new JinjaException("'in <string>' requires string as left operand, not " + typeName(item));
                yield s.contains(i);
            }
            case List<?> l -> l.stream().anyMatch(x -> eq(x, item));
            case Map<?, ?> m -> m.keySet().stream().anyMatch(k -> eq(k, item));
            case Undefined u -> false;
            case null, default -> throw new JinjaException("argument of type '" + typeName(container) + "' is not iterable");
        };
    }

    /** What a for loop or a filter iterates: list items, dict keys, string characters. */
    static List<Object> iterate(Object v) {
        return switch (v) {
            case List<?> l -> new ArrayList<>(l);
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case String s -> {
                var chars = new ArrayList<Object>();
                s.codePoints().forEach(cp -> chars.add(Character.toString(cp)));
                yield chars;
            }
            case Undefined u -> new ArrayList<>();
            case null, default -> throw new JinjaException("'" + typeName(v) + "' object is not iterable");
        };
    }

    static int length(Object v) {
        return switch (v) {
            case String s -> s.codePointCount(0, s.length());
            case Collection<?> c -> c.size();
            case Map<?, ?> m -> m.size();
            case Undefined u -> 0;
            case null, default -> throw new JinjaException("object of type '" + typeName(v) + "' has no len()");
        };
    }

    // ---------------------------------------------------------------- arithmetic

    static Object binary(String op, Object a, Object b) {
        if (op.equals("~")) return str(a) + str(b);
        if (a instanceof Undefined u) throw u.error();
        if (b instanceof Undefined u) throw u.error();
        if (op.equals("+")) {
            if (a instanceof String x && b instanceof String y) return x + y;
            if (a instanceof List<?> x && b instanceof List<?> y) {
                var out = new ArrayList<Object>(x);
                out.addAll(y);
                return out;
            }
            // CPython's own words for str + non-str and list + non-list
            if (a instanceof String || (a instanceof List<?> && !(a instanceof Tuple))) {
                String type = typeName(a);
                throw new JinjaException("can only concatenate " + type + " (not \"" + typeName(b) + "\") to " + type);
            }
        }
        if (op.equals("*")) {
            if (a instanceof String s && b instanceof Long n) return s.repeat((int) Math.max(0, n));
            if (a instanceof Long n && b instanceof String s) return s.repeat((int) Math.max(0, n));
            if (a instanceof List<?> l && b instanceof Long n) {
                var out = new ArrayList<Object>();
                for (long i = 0; i < n; i++) out.addAll(l);
                return out;
            }
        }
        if (!isNumber(a) || !isNumber(b)) {
            throw new JinjaException("unsupported operand type(s) for " + op + ": '" + typeName(a) + "' and '" + typeName(b) + "'");
        }
        boolean integral = !(a instanceof Double) && !(b instanceof Double);
        switch (op) {
            case "+" -> {
                return integral ? (Object) (toLong(a) + toLong(b)) : (Object) (toDouble(a) + toDouble(b));
            }
            case "-" -> {
                return integral ? (Object) (toLong(a) - toLong(b)) : (Object) (toDouble(a) - toDouble(b));
            }
            case "*" -> {
                return integral ? (Object) (toLong(a) * toLong(b)) : (Object) (toDouble(a) * toDouble(b));
            }
            case "/" -> {
                if (toDouble(b) == 0) throw new JinjaException("division by zero");
                return toDouble(a) / toDouble(b);
            }
            case "//" -> {
                if (toDouble(b) == 0) throw new JinjaException("integer division or modulo by zero");
                return integral ? (Object) Math.floorDiv(toLong(a), toLong(b)) : (Object) Math.floor(toDouble(a) / toDouble(b));
            }
            case "%" -> {
                if (toDouble(b) == 0) throw new JinjaException("integer division or modulo by zero");
                if (integral) return Math.floorMod(toLong(a), toLong(b));
                double x = toDouble(a), y = toDouble(b), r = x % y;
                return r != 0 && (r < 0) != (y < 0) ? r + y : r;
            }
            case "**" -> {
                if (integral && toLong(b) >= 0) {
                    long r = 1, base = toLong(a);
                    for (long i = toLong(b); i > 0; i--) r *= base;
                    return r;
                }
                return Math.pow(toDouble(a), toDouble(b));
            }
            default -> throw new JinjaException("unknown operator " + op);
        }
    }

    // ---------------------------------------------------------------- JSON (transformers' tojson)

    /**
     * transformers' {@code tojson}: {@code json.dumps(x, ensure_ascii=False, indent=indent)}, so
     * separators are {@code ", "} and {@code ": "}, or {@code ","} and newlines when indented.
     */
    static String toJson(Object v, Integer indent) {
        var sb = new StringBuilder();
        writeJson(sb, v, indent, 0);
        return sb.toString();
    }

    private static void writeJson(StringBuilder sb, Object v, Integer indent, int depth) {
        switch (v) {
            case null -> sb.append("null");
            case Boolean b -> sb.append(b);
            case Long l -> sb.append(l);
            case Double d -> sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : floatRepr(d));
            case String s -> jsonString(sb, s);
            case List<?> list -> {
                if (list.isEmpty()) {
                    sb.append("[]");
                    return;
                }
                sb.append('[');
                for (int i = 0; i < list.size(); i++) {
                    if (i > 0) sb.append(indent == null ? ", " : ",");
                    newline(sb, indent, depth + 1);
                    writeJson(sb, list.get(i), indent, depth + 1);
                }
                newline(sb, indent, depth);
                sb.append(']');
            }
            case Map<?, ?> map -> {
                if (map.isEmpty()) {
                    sb.append("{}");
                    return;
                }
                sb.append('{');
                boolean first = true;
                for (var e : map.entrySet()) {
                    if (!first) sb.append(indent == null ? ", " : ",");
                    first = false;
                    newline(sb, indent, depth + 1);
                    Object key = e.getKey();
                    jsonString(sb, key instanceof String s ? s : key instanceof Boolean b ? b.toString() : key == null ? "null" : str(key));
                    sb.append(": ");
                    writeJson(sb, e.getValue(), indent, depth + 1);
                }
                newline(sb, indent, depth);
                sb.append('}');
            }
            default -> throw new JinjaException("Object of type " + typeName(v) + " is not JSON serializable");
        }
    }

    private static void newline(StringBuilder sb, Integer indent, int depth) {
        if (indent != null) sb.append('\n').append(" ".repeat(indent * depth));
    }

    private static void jsonString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
    }

    // ---------------------------------------------------------------- Python string methods

    static boolean isPyWhitespace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85;
    }

    /** {@code str.strip/lstrip/rstrip(chars)}; chars null means whitespace. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0, end = s.length();
        if (left) while (start < end && stripped(s.charAt(start), chars)) start++;
        if (right) while (end > start && stripped(s.charAt(end - 1), chars)) end--;
        return s.substring(start, end);
    }

    private static boolean stripped(char c, String chars) {
        return chars == null ? isPyWhitespace(c) : chars.indexOf(c) >= 0;
    }

    /** {@code str.split(sep, maxsplit)}: with no separator, runs of whitespace split and ends are dropped. */
    static List<Object> split(String s, String sep, long maxSplit) {
        var out = new ArrayList<Object>();
        if (sep == null) {
            int i = 0, n = s.length();
            while (true) {
                while (i < n && isPyWhitespace(s.charAt(i))) i++;
                if (i >= n) break;
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !isPyWhitespace(s.charAt(j))) j++;
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) throw new JinjaException("empty separator");
        int from = 0;
        while (maxSplit < 0 || out.size() < maxSplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) break;
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    static List<Object> rsplit(String s, String sep, long maxSplit) {
        if (sep == null || maxSplit < 0) return split(s, sep, maxSplit);
        var out = new ArrayList<Object>();
        int to = s.length();
        while (out.size() < maxSplit) {
            int at = s.lastIndexOf(sep, to - sep.length());
            if (at < 0) break;
            out.addFirst(s.substring(at + sep.length(), to));
            to = at;
        }
        out.addFirst(s.substring(0, to));
        return out;
    }

    static String title(String s) {
        var sb = new StringBuilder();
        boolean prevCased = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            sb.appendCodePoint(prevCased ? Character.toLowerCase(cp) : Character.toTitleCase(cp));
            prevCased = Character.isLetter(cp);
            i += Character.charCount(cp);
        }
        return sb.toString();
    }

    static String capitalize(String s) {
        if (s.isEmpty()) return s;
        int first = s.codePointAt(0);
        return new StringBuilder().appendCodePoint(Character.toUpperCase(first))
                .append(s.substring(Character.charCount(first)).toLowerCase()).toString();
    }
}
