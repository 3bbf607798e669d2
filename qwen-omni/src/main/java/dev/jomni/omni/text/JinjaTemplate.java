package dev.jomni.omni.text;

import static dev.jomni.omni.text.JinjaValues.contains;
import static dev.jomni.omni.text.JinjaValues.eq;
import static dev.jomni.omni.text.JinjaValues.iterate;
import static dev.jomni.omni.text.JinjaValues.length;
import static dev.jomni.omni.text.JinjaValues.str;
import static dev.jomni.omni.text.JinjaValues.toLong;
import static dev.jomni.omni.text.JinjaValues.truthy;
import static dev.jomni.omni.text.JinjaValues.typeName;

import dev.jomni.omni.text.JinjaParser.Assign;
import dev.jomni.omni.text.JinjaParser.AssignBlock;
import dev.jomni.omni.text.JinjaParser.Attr;
import dev.jomni.omni.text.JinjaParser.Binary;
import dev.jomni.omni.text.JinjaParser.Call;
import dev.jomni.omni.text.JinjaParser.Compare;
import dev.jomni.omni.text.JinjaParser.Conditional;
import dev.jomni.omni.text.JinjaParser.Const;
import dev.jomni.omni.text.JinjaParser.DictLit;
import dev.jomni.omni.text.JinjaParser.Expr;
import dev.jomni.omni.text.JinjaParser.Filter;
import dev.jomni.omni.text.JinjaParser.FilterBlock;
import dev.jomni.omni.text.JinjaParser.For;
import dev.jomni.omni.text.JinjaParser.If;
import dev.jomni.omni.text.JinjaParser.Item;
import dev.jomni.omni.text.JinjaParser.ListLit;
import dev.jomni.omni.text.JinjaParser.LoopControl;
import dev.jomni.omni.text.JinjaParser.Macro;
import dev.jomni.omni.text.JinjaParser.Name;
import dev.jomni.omni.text.JinjaParser.Node;
import dev.jomni.omni.text.JinjaParser.Output;
import dev.jomni.omni.text.JinjaParser.Slice;
import dev.jomni.omni.text.JinjaParser.Test;
import dev.jomni.omni.text.JinjaParser.Text;
import dev.jomni.omni.text.JinjaParser.TupleLit;
import dev.jomni.omni.text.JinjaParser.Unary;
import dev.jomni.omni.text.JinjaValues.Callable;
import dev.jomni.omni.text.JinjaValues.Namespace;
import dev.jomni.omni.text.JinjaValues.Undefined;
import java.time.Clock;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A Jinja template compiled for rendering chat templates: the subset of Jinja2 that Hugging Face
 * chat templates use, evaluated with Python value semantics, as transformers renders them
 * ({@code trim_blocks}, {@code lstrip_blocks}, default undefined, {@code loopcontrols}, the
 * {@code generation} tag, and the globals {@code raise_exception}, {@code strftime_now},
 * {@code namespace}, {@code range}, {@code dict}).
 *
 * <p>Supported: {@code if/elif/else}, {@code for} (tuple targets, {@code if} filter, {@code else},
 * {@code loop.*}), {@code set} (names, tuples, namespace attributes, blocks), {@code macro},
 * {@code filter} blocks, {@code break}/{@code continue}, {@code raw}; expressions with literals,
 * slicing, calls, filters, tests, and Python's string and dict methods. Not supported (an error
 * when met): template inheritance and includes, {@code call} blocks, recursive loops, autoescape.
 */
final class JinjaTemplate {
    private final List<Node> nodes;

    private JinjaTemplate(List<Node> nodes) {
        this.nodes = nodes;
    }

    static JinjaTemplate compile(String source) {
        return new JinjaTemplate(JinjaParser.parse(source));
    }

    String render(Map<String, ?> variables) {
        return render(variables, Clock.systemDefaultZone());
    }

    /** @param clock what {@code strftime_now} reads */
    String render(Map<String, ?> variables, Clock clock) {
        var globals = new Frame(null);
        globals.vars.putAll(GLOBALS);
        globals.vars.put("strftime_now", (Callable) (a, k) -> strftime(str(a.getFirst()), ZonedDateTime.now(clock)));
        var frame = new Frame(globals);
        frame.vars.putAll(variables);
        var out = new StringBuilder();
        execute(nodes, frame, out);
        return out.toString();
    }

    private static final class Frame {
        final Frame parent;
        final Map<String, Object> vars = new HashMap<>();

        Frame(Frame parent) {
            this.parent = parent;
        }

        Object lookup(String name) {
            for (Frame f = this; f != null; f = f.parent) {
                if (f.vars.containsKey(name)) return f.vars.get(name);
            }
            return new Undefined(name);
        }
    }

    private enum Flow { NORMAL, BREAK, CONTINUE }

    /** Jinja's {@code loop} object. */
    private record Loop(List<Object> items, int index0) {}

    // ---------------------------------------------------------------- statements

    private Flow execute(List<Node> body, Frame frame, StringBuilder out) {
        for (var node : body) {
            Flow flow = execute(node, frame, out);
            if (flow != Flow.NORMAL) return flow;
        }
        return Flow.NORMAL;
    }

    private Flow execute(Node node, Frame frame, StringBuilder out) {
        int line = switch (node) {
            case Output o -> o.line();
            case If i -> i.line();
            case For f -> f.line();
            case Assign a -> a.line();
            case AssignBlock a -> a.line();
            case FilterBlock f -> f.line();
            case LoopControl l -> l.line();
            case Text t -> 0;
            case Macro m -> 0;
        };
        try {
            return executeAt(node, frame, out);
        } catch (JinjaException e) {
            if (line == 0 || e.getMessage().startsWith("line ")) throw e;
            throw new JinjaException("line " + line + ": " + e.getMessage());
        }
    }

    private Flow executeAt(Node node, Frame frame, StringBuilder out) {
        switch (node) {
            case Text t -> out.append(t.text());
            case Output o -> out.append(str(eval(o.expr(), frame)));
            case If i -> {
                for (int k = 0; k < i.conditions().size(); k++) {
                    if (truthy(eval(i.conditions().get(k), frame))) return execute(i.bodies().get(k), frame, out);
                }
                return execute(i.orElse(), frame, out);
            }
            case For f -> {
                return loop(f, frame, out);
            }
            case Assign a -> assign(a.target(), eval(a.value(), frame), frame);
            case AssignBlock a -> {
                var sb = new StringBuilder();
                execute(a.body(), new Frame(frame), sb);
                frame.vars.put(a.name(), sb.toString());
            }
            case Macro m -> frame.vars.put(m.name(), macro(m, frame));
            case FilterBlock f -> {
                var sb = new StringBuilder();
                execute(f.body(), new Frame(frame), sb);
                out.append(str(filter(f.filter(), sb.toString(), evalAll(f.args(), frame), evalAll(f.kwargs(), frame))));
            }
            case LoopControl l -> {
                return l.isBreak() ? Flow.BREAK : Flow.CONTINUE;
            }
        }
        return Flow.NORMAL;
    }

    private Flow loop(For f, Frame frame, StringBuilder out) {
        var items = iterate(eval(f.iterable(), frame));
        if (f.filter() != null) {
            var kept = new ArrayList<Object>();
            for (var item : items) {
                var probe = new Frame(frame);
                bindTargets(f.targets(), item, probe);
                if (truthy(eval(f.filter(), probe))) kept.add(item);
            }
            items = kept;
        }
        if (items.isEmpty()) return execute(f.orElse(), new Frame(frame), out);
        for (int i = 0; i < items.size(); i++) {
            // Each iteration gets its own frame: Jinja's set inside a loop does not leak out of it.
            var body = new Frame(frame);
            body.vars.put("loop", new Loop(items, i));
            bindTargets(f.targets(), items.get(i), body);
            if (execute(f.body(), body, out) == Flow.BREAK) break;
        }
        return Flow.NORMAL;
    }

    private static void bindTargets(List<String> targets, Object item, Frame frame) {
        if (targets.size() == 1) {
            frame.vars.put(targets.getFirst(), item);
            return;
        }
        var values = iterate(item);
        if (values.size() != targets.size()) {
            throw new JinjaException("cannot unpack " + values.size() + " values into " + targets.size() + " loop variables");
        }
        for (int i = 0; i < targets.size(); i++) frame.vars.put(targets.get(i), values.get(i));
    }

    private void assign(Expr target, Object value, Frame frame) {
        switch (target) {
            case Name n -> frame.vars.put(n.name(), value);
            case Attr a -> {
                Object ns = eval(a.target(), frame);
                if (!(ns instanceof Namespace n)) throw new JinjaException("cannot assign attribute on non-namespace object " + typeName(ns));
                n.attributes.put(a.name(), value);
            }
            case TupleLit t -> {
                var values = iterate(value);
                if (values.size() != t.items().size()) throw new JinjaException("cannot unpack " + values.size() + " values into " + t.items().size());
                for (int i = 0; i < values.size(); i++) assign(t.items().get(i), values.get(i), frame);
            }
            default -> throw new JinjaException("cannot assign to " + target);
        }
    }

    private Callable macro(Macro m, Frame defining) {
        return (args, kwargs) -> {
            var frame = new Frame(defining);
            for (int i = 0; i < m.params().size(); i++) {
                String p = m.params().get(i);
                Object v;
                if (i < args.size()) v = args.get(i);
                else if (kwargs.containsKey(p)) v = kwargs.get(p);
                else if (m.defaults().get(i) != null) v = eval(m.defaults().get(i), frame);
                else v = new Undefined(p);
                frame.vars.put(p, v);
            }
            var sb = new StringBuilder();
            execute(m.body(), frame, sb);
            return sb.toString();
        };
    }

    // ---------------------------------------------------------------- expressions

    private List<Object> evalAll(List<Expr> exprs, Frame frame) {
        var out = new ArrayList<Object>(exprs.size());
        for (var e : exprs) out.add(eval(e, frame));
        return out;
    }

    private Map<String, Object> evalAll(Map<String, Expr> exprs, Frame frame) {
        var out = new LinkedHashMap<String, Object>();
        exprs.forEach((k, e) -> out.put(k, eval(e, frame)));
        return out;
    }

    private Object eval(Expr e, Frame frame) {
        return switch (e) {
            case Const c -> c.value();
            case Name n -> frame.lookup(n.name());
            case Attr a -> attribute(eval(a.target(), frame), a.name());
            case Item i -> item(eval(i.target(), frame), eval(i.key(), frame));
            case Slice s -> slice(eval(s.target(), frame), s.start() == null ? null : eval(s.start(), frame),
                    s.stop() == null ? null : eval(s.stop(), frame), s.step() == null ? null : eval(s.step(), frame));
            case Call c -> {
                Object fn = eval(c.function(), frame);
                if (fn instanceof Undefined u) throw u.error();
                if (!(fn instanceof Callable callable)) throw new JinjaException("'" + typeName(fn) + "' object is not callable");
                yield callable.call(evalAll(c.args(), frame), evalAll(c.kwargs(), frame));
            }
            case Filter f -> filter(f.name(), eval(f.value(), frame), evalAll(f.args(), frame), evalAll(f.kwargs(), frame));
            case Test t -> test(t.name(), eval(t.value(), frame), evalAll(t.args(), frame)) != t.negated();
            case Unary u -> {
                Object v = eval(u.operand(), frame);
                yield switch (u.op()) {
                    case "not" -> !truthy(v);
                    case "-" -> v instanceof Double d ? (Object) (-d) : (Object) (-toLong(v));
                    default -> v;
                };
            }
            case Binary b -> switch (b.op()) {
                case "and" -> {
                    Object left = eval(b.left(), frame);
                    yield truthy(left) ? eval(b.right(), frame) : left;
                }
                case "or" -> {
                    Object left = eval(b.left(), frame);
                    yield truthy(left) ? left : eval(b.right(), frame);
                }
                default -> JinjaValues.binary(b.op(), eval(b.left(), frame), eval(b.right(), frame));
            };
            case Compare c -> {
                Object left = eval(c.first(), frame);
                for (int i = 0; i < c.ops().size(); i++) {
                    Object right = eval(c.rest().get(i), frame);
                    boolean ok = switch (c.ops().get(i)) {
                        case "==" -> eq(left, right);
                        case "!=" -> !eq(left, right);
                        case "<" -> JinjaValues.compare(left, right) < 0;
                        case "<=" -> JinjaValues.compare(left, right) <= 0;
                        case ">" -> JinjaValues.compare(left, right) > 0;
                        case ">=" -> JinjaValues.compare(left, right) >= 0;
                        case "in" -> contains(right, left);
                        default -> !contains(right, left);
                    };
                    if (!ok) yield false;
                    left = right;
                }
                yield true;
            }
            case Conditional c -> truthy(eval(c.condition(), frame)) ? eval(c.ifTrue(), frame)
                    : c.ifFalse() == null ? new Undefined("else branch") : eval(c.ifFalse(), frame);
            case ListLit l -> evalAll(l.items(), frame);
            case TupleLit t -> new JinjaValues.Tuple(evalAll(t.items(), frame));
            case DictLit d -> {
                var map = new LinkedHashMap<Object, Object>();
                for (int i = 0; i < d.keys().size(); i++) map.put(eval(d.keys().get(i), frame), eval(d.values().get(i), frame));
                yield map;
            }
        };
    }

    /** Jinja's {@code getattr}: a Python attribute (a method) first, then the item of that name. */
    private static Object attribute(Object target, String name) {
        switch (target) {
            case Undefined u -> throw u.error();
            case Map<?, ?> m -> {
                Object method = dictMethod(m, name);
                if (method != null) return method;
                return m.containsKey(name) ? m.get(name) : Undefined.attribute(m, name);
            }
            case String s -> {
                Object method = stringMethod(s, name);
                return method != null ? method : Undefined.attribute(s, name);
            }
            case Namespace n -> {
                return n.attributes.containsKey(name) ? n.attributes.get(name) : Undefined.attribute(n, name);
            }
            case Loop l -> {
                return loopAttribute(l, name);
            }
            case null, default -> {
                return Undefined.attribute(target, name);
            }
        }
    }

    private static Object loopAttribute(Loop l, String name) {
        int n = l.items().size(), i = l.index0();
        return switch (name) {
            case "index0" -> (long) i;
            case "index" -> (long) i + 1;
            case "revindex0" -> (long) (n - i - 1);
            case "revindex" -> (long) (n - i);
            case "first" -> i == 0;
            case "last" -> i == n - 1;
            case "length" -> (long) n;
            case "depth" -> 1L;
            case "depth0" -> 0L;
            case "previtem" -> i > 0 ? l.items().get(i - 1) : new Undefined("loop.previtem");
            case "nextitem" -> i + 1 < n ? l.items().get(i + 1) : new Undefined("loop.nextitem");
            case "cycle" -> (Callable) (args, kw) -> args.isEmpty() ? new Undefined("cycle") : args.get(i % args.size());
            default -> new Undefined(name, "'jinja2.runtime.LoopContext object' has no attribute '" + name + "'");
        };
    }

    /** Jinja's {@code getitem}: the item first, then an attribute of that name. */
    private static Object item(Object target, Object key) {
        switch (target) {
            case Undefined u -> throw u.error();
            case Map<?, ?> m -> {
                for (var e : m.entrySet()) if (eq(e.getKey(), key)) return e.getValue();
                return key instanceof String s ? attribute(target, s) : Undefined.element(target, key);
            }
            case List<?> l -> {
                if (!JinjaValues.isNumber(key)) return key instanceof String k ? attribute(target, k) : Undefined.element(target, key);
                long i = toLong(key);
                if (i < 0) i += l.size();
                return i >= 0 && i < l.size() ? l.get((int) i) : Undefined.element(target, key);
            }
            case String s -> {
                if (!JinjaValues.isNumber(key)) return key instanceof String k ? attribute(target, k) : Undefined.element(target, key);
                var chars = iterate(s);
                long i = toLong(key);
                if (i < 0) i += chars.size();
                return i >= 0 && i < chars.size() ? chars.get((int) i) : Undefined.element(target, key);
            }
            case null, default -> {
                return key instanceof String s ? attribute(target, s) : Undefined.element(target, key);
            }
        }
    }

    /** Python slicing {@code [start:stop:step]} of a list or string. */
    private static Object slice(Object target, Object start, Object stop, Object step) {
        if (target instanceof Undefined u) throw u.error();
        boolean isString = target instanceof String;
        if (!isString && !(target instanceof List<?>)) throw new JinjaException("'" + typeName(target) + "' object is not subscriptable");
        var items = iterate(target);
        int n = items.size();
        long st = step == null ? 1 : toLong(step);
        if (st == 0) throw new JinjaException("slice step cannot be zero");
        long lo, hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(toLong(start), n, 0, n);
            hi = stop == null ? n : clamp(toLong(stop), n, 0, n);
        } else {
            lo = start == null ? n - 1 : clamp(toLong(start), n, -1, n - 1);
            hi = stop == null ? -1 : clamp(toLong(stop), n, -1, n - 1);
        }
        var out = new ArrayList<Object>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) out.add(items.get((int) i));
        if (!isString) return out;
        var sb = new StringBuilder();
        for (var o : out) sb.append((String) o);
        return sb.toString();
    }

    private static long clamp(long index, int n, long min, long max) {
        if (index < 0) index += n;
        return Math.max(min, Math.min(max, index));
    }

    // ---------------------------------------------------------------- methods

    private static Object dictMethod(Map<?, ?> m, String name) {
        return switch (name) {
            case "items" -> (Callable) (a, k) -> {
                var out = new ArrayList<Object>();
                m.forEach((key, v) -> out.add(new JinjaValues.Tuple(Arrays.asList(key, v))));   // asList: values may be None
                return out;
            };
            case "keys" -> (Callable) (a, k) -> new ArrayList<Object>(m.keySet());
            case "values" -> (Callable) (a, k) -> new ArrayList<Object>(m.values());
            case "get" -> (Callable) (a, k) -> {
                Object key = arg(a, k, 0, "key", null);
                for (var e : m.entrySet()) if (eq(e.getKey(), key)) return e.getValue();
                return arg(a, k, 1, "default", null);
            };
            default -> null;
        };
    }

    private static Object stringMethod(String s, String name) {
        return switch (name) {
            case "startswith", "endswith" -> (Callable) (a, k) -> {
                Object prefixes = arg(a, k, 0, "prefix", null);
                for (var p : prefixes instanceof List<?> l ? l : List.of(prefixes)) {
                    if (!(p instanceof String ps)) throw new JinjaException(name + " arg must be str or a tuple of str, not " + typeName(p));
                    if (name.equals("startswith") ? s.startsWith(ps) : s.endsWith(ps)) return true;
                }
                return false;
            };
            case "strip", "lstrip", "rstrip" -> (Callable) (a, k) -> {
                Object chars = arg(a, k, 0, "chars", null);
                return JinjaValues.strip(s, chars == null ? null : str(chars), !name.equals("rstrip"), !name.equals("lstrip"));
            };
            case "split", "rsplit" -> (Callable) (a, k) -> {
                Object sep = arg(a, k, 0, "sep", null);
                long max = toLong(arg(a, k, 1, "maxsplit", -1L));
                String sp = sep == null ? null : str(sep);
                return name.equals("split") ? JinjaValues.split(s, sp, max) : JinjaValues.rsplit(s, sp, max);
            };
            case "splitlines" -> (Callable) (a, k) -> {
                var lines = new ArrayList<Object>(Arrays.asList((Object[]) s.split("\r\n|\n|\r", -1)));
                if (((String) lines.getLast()).isEmpty()) lines.removeLast();
                return lines;
            };
            case "upper" -> (Callable) (a, k) -> s.toUpperCase(Locale.ROOT);
            case "lower" -> (Callable) (a, k) -> s.toLowerCase(Locale.ROOT);
            case "title" -> (Callable) (a, k) -> JinjaValues.title(s);
            case "capitalize" -> (Callable) (a, k) -> JinjaValues.capitalize(s);
            case "replace" -> (Callable) (a, k) -> {
                String old = str(arg(a, k, 0, "old", "")), repl = str(arg(a, k, 1, "new", ""));
                long count = toLong(arg(a, k, 2, "count", -1L));
                return replace(s, old, repl, count);
            };
            case "find", "rfind", "index" -> (Callable) (a, k) -> {
                String sub = str(arg(a, k, 0, "sub", ""));
                int at = name.equals("rfind") ? s.lastIndexOf(sub) : s.indexOf(sub);
                if (at < 0 && name.equals("index")) throw new JinjaException("substring not found");
                return (long) (at < 0 ? -1 : s.codePointCount(0, at));
            };
            case "count" -> (Callable) (a, k) -> {
                String sub = str(arg(a, k, 0, "sub", ""));
                if (sub.isEmpty()) return (long) s.codePointCount(0, s.length()) + 1;
                long n = 0;
                for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) n++;
                return n;
            };
            case "join" -> (Callable) (a, k) -> {
                var sb = new StringBuilder();
                var items = iterate(arg(a, k, 0, "iterable", List.of()));
                for (int i = 0; i < items.size(); i++) sb.append(i > 0 ? s : "").append(str(items.get(i)));
                return sb.toString();
            };
            case "isdigit" -> (Callable) (a, k) -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isspace" -> (Callable) (a, k) -> !s.isEmpty() && s.chars().allMatch(JinjaValues::isPyWhitespace);
            default -> null;
        };
    }

    private static String replace(String s, String old, String repl, long count) {
        if (count < 0) return s.replace(old, repl);
        var sb = new StringBuilder();
        int from = 0;
        for (long done = 0; done < count; done++) {
            int at = s.indexOf(old, from);
            if (at < 0) break;
            sb.append(s, from, at).append(repl);
            from = at + old.length();
            if (old.isEmpty()) {
                if (at < s.length()) sb.append(s.charAt(at));
                from = at + 1;
                if (from > s.length()) break;
            }
        }
        return sb.append(s.substring(Math.min(from, s.length()))).toString();
    }

    private static Object arg(List<Object> args, Map<String, Object> kwargs, int index, String name, Object fallback) {
        if (index < args.size()) return args.get(index);
        return kwargs.getOrDefault(name, fallback);
    }

    // ---------------------------------------------------------------- filters and tests

    private Object filter(String name, Object v, List<Object> a, Map<String, Object> k) {
        switch (name) {
            case "length", "count" -> {
                return (long) length(v);
            }
            case "tojson" -> {
                Object indent = arg(a, k, 0, "indent", null);
                return JinjaValues.toJson(v, indent == null ? null : (int) toLong(indent));
            }
            case "trim" -> {
                Object chars = arg(a, k, 0, "chars", null);
                return JinjaValues.strip(str(v), chars == null ? null : str(chars), true, true);
            }
            case "upper" -> {
                return str(v).toUpperCase(Locale.ROOT);
            }
            case "lower" -> {
                return str(v).toLowerCase(Locale.ROOT);
            }
            case "capitalize" -> {
                return JinjaValues.capitalize(str(v));
            }
            case "title" -> {
                return JinjaValues.title(str(v));
            }
            case "string" -> {
                return str(v);
            }
            case "safe", "e", "escape" -> {
                return name.equals("safe") ? v : escape(str(v));
            }
            case "default", "d" -> {
                boolean useIfFalsy = truthy(arg(a, k, 1, "boolean", false));
                boolean missing = v instanceof Undefined || (useIfFalsy && !truthy(v));
                return missing ? arg(a, k, 0, "default_value", "") : v;
            }
            case "first", "last" -> {
                var items = iterate(v);
                if (items.isEmpty()) return new Undefined(name);
                return name.equals("first") ? items.getFirst() : items.getLast();
            }
            case "list" -> {
                return iterate(v);
            }
            case "reverse" -> {
                if (v instanceof String s) return new StringBuilder(s).reverse().toString();
                return iterate(v).reversed();
            }
            case "join" -> {
                String sep = str(arg(a, k, 0, "d", ""));
                Object attr = arg(a, k, 1, "attribute", null);
                var sb = new StringBuilder();
                var items = iterate(v);
                for (int i = 0; i < items.size(); i++) {
                    Object item = attr == null ? items.get(i) : item(items.get(i), attr);
                    sb.append(i > 0 ? sep : "").append(str(item));
                }
                return sb.toString();
            }
            case "int" -> {
                try {
                    return v instanceof String s ? Long.parseLong(s.strip()) : v instanceof Double d ? (long) (double) d : toLong(v);
                } catch (RuntimeException e) {
                    return arg(a, k, 0, "default", 0L);
                }
            }
            case "float" -> {
                try {
                    return v instanceof String s ? Double.parseDouble(s.strip()) : JinjaValues.toDouble(v);
                } catch (RuntimeException e) {
                    return arg(a, k, 0, "default", 0.0);
                }
            }
            case "abs" -> {
                return v instanceof Double d ? (Object) Math.abs(d) : (Object) Math.abs(toLong(v));
            }
            case "round" -> {
                long precision = toLong(arg(a, k, 0, "precision", 0L));
                double scale = Math.pow(10, precision);
                return Math.rint(JinjaValues.toDouble(v) * scale) / scale;
            }
            case "replace" -> {
                Object count = arg(a, k, 2, "count", null);
                return replace(str(v), str(arg(a, k, 0, "old", "")), str(arg(a, k, 1, "new", "")), count == null ? -1 : toLong(count));
            }
            case "items" -> {
                if (v instanceof Undefined) return List.of();
                if (!(v instanceof Map<?, ?> m)) throw new JinjaException("items filter needs a mapping, found " + typeName(v));
                return ((Callable) dictMethod(m, "items")).call(List.of(), Map.of());
            }
            case "map" -> {
                var out = new ArrayList<Object>();
                Object attr = k.get("attribute");
                for (var item : iterate(v)) {
                    if (attr != null) {
                        Object got = item(item, attr);
                        out.add(got instanceof Undefined && k.containsKey("default") ? k.get("default") : got);
                    } else {
                        out.add(filter(str(a.getFirst()), item, a.subList(1, a.size()), Map.of()));
                    }
                }
                return out;
            }
            case "select", "reject", "selectattr", "rejectattr" -> {
                boolean byAttr = name.endsWith("attr");
                boolean keep = name.startsWith("select");
                var out = new ArrayList<Object>();
                for (var item : iterate(v)) {
                    Object subject = byAttr ? item(item, a.getFirst()) : item;
                    int testAt = byAttr ? 1 : 0;
                    boolean pass = a.size() > testAt
                            ? test(str(a.get(testAt)), subject, a.subList(testAt + 1, a.size()))
                            : truthy(subject);
                    if (pass == keep) out.add(item);
                }
                return out;
            }
            case "unique" -> {
                var out = new ArrayList<Object>();
                for (var item : iterate(v)) if (out.stream().noneMatch(x -> eq(x, item))) out.add(item);
                return out;
            }
            case "sort" -> {
                boolean reverse = truthy(arg(a, k, 0, "reverse", false));
                Object attr = arg(a, k, 2, "attribute", null);
                var items = iterate(v);
                Comparator<Object> cmp = (x, y) -> JinjaValues.compare(attr == null ? x : item(x, attr), attr == null ? y : item(y, attr));
                items.sort(reverse ? cmp.reversed() : cmp);
                return items;
            }
            case "sum" -> {
                Object total = arg(a, k, 1, "start", 0L);
                Object attr = arg(a, k, 0, "attribute", null);
                for (var item : iterate(v)) total = JinjaValues.binary("+", total, attr == null ? item : item(item, attr));
                return total;
            }
            case "min", "max" -> {
                var items = iterate(v);
                if (items.isEmpty()) return new Undefined(name);
                Object best = items.getFirst();
                for (var item : items) {
                    int c = JinjaValues.compare(item, best);
                    if (name.equals("min") ? c < 0 : c > 0) best = item;
                }
                return best;
            }
            case "indent" -> {
                Object width = arg(a, k, 0, "width", 4L);
                String pad = width instanceof String s ? s : " ".repeat((int) toLong(width));
                boolean first = truthy(arg(a, k, 1, "first", false)), blank = truthy(arg(a, k, 2, "blank", false));
                String[] lines = str(v).split("\n", -1);
                var sb = new StringBuilder();
                for (int i = 0; i < lines.length; i++) {
                    if (i > 0) sb.append('\n');
                    boolean indentThis = (i > 0 || first) && (blank || !lines[i].isBlank());
                    sb.append(indentThis ? pad : "").append(lines[i]);
                }
                return sb.toString();
            }
            default -> throw new JinjaException("no filter named '" + name + "'");
        }
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&#34;").replace("'", "&#39;");
    }

    private static boolean test(String name, Object v, List<Object> a) {
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "string" -> v instanceof String;
            case "number" -> v instanceof Long || v instanceof Double;
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "mapping" -> v instanceof Map<?, ?>;
            case "sequence" -> v instanceof List<?> || v instanceof String || v instanceof Map<?, ?>;
            case "iterable" -> v instanceof List<?> || v instanceof String || v instanceof Map<?, ?>;
            case "callable" -> v instanceof Callable;
            case "even" -> toLong(v) % 2 == 0;
            case "odd" -> toLong(v) % 2 != 0;
            case "divisibleby" -> toLong(v) % toLong(a.getFirst()) == 0;
            case "eq", "equalto", "==" -> eq(v, a.getFirst());
            case "ne", "!=" -> !eq(v, a.getFirst());
            case "lt", "<" -> JinjaValues.compare(v, a.getFirst()) < 0;
            case "le", "<=" -> JinjaValues.compare(v, a.getFirst()) <= 0;
            case "gt", ">", "greaterthan" -> JinjaValues.compare(v, a.getFirst()) > 0;
            case "ge", ">=" -> JinjaValues.compare(v, a.getFirst()) >= 0;
            case "in" -> contains(a.getFirst(), v);
            case "sameas" -> v == a.getFirst() || (v != null && (v instanceof Boolean || v instanceof Long) && v.equals(a.getFirst()));
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw new JinjaException("no test named '" + name + "'");
        };
    }

    // ---------------------------------------------------------------- globals

    private static final Map<String, Object> GLOBALS = Map.of(
            "namespace", (Callable) (a, k) -> {
                var ns = new Namespace();
                for (var positional : a) {
                    if (positional instanceof Map<?, ?> m) m.forEach((key, val) -> ns.attributes.put(str(key), val));
                }
                ns.attributes.putAll(k);
                return ns;
            },
            "range", (Callable) (a, k) -> {
                long start = a.size() > 1 ? toLong(a.get(0)) : 0, stop = toLong(a.size() > 1 ? a.get(1) : a.getFirst());
                long step = a.size() > 2 ? toLong(a.get(2)) : 1;
                if (step == 0) throw new JinjaException("range() arg 3 must not be zero");
                var out = new ArrayList<Object>();
                for (long i = start; step > 0 ? i < stop : i > stop; i += step) out.add(i);
                return out;
            },
            "dict", (Callable) (a, k) -> {
                var out = new LinkedHashMap<Object, Object>();
                for (var positional : a) if (positional instanceof Map<?, ?> m) out.putAll(m);
                out.putAll(k);
                return out;
            },
            "raise_exception", (Callable) (a, k) -> {
                throw new JinjaException(a.isEmpty() ? "raise_exception" : str(a.getFirst()));
            });

    /** Python's strftime for the directives chat templates use (dates in system prompts). */
    static String strftime(String format, ZonedDateTime t) {
        var sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char d = format.charAt(++i);
            switch (d) {
                case 'd' -> sb.append(String.format("%02d", t.getDayOfMonth()));
                case 'm' -> sb.append(String.format("%02d", t.getMonthValue()));
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
                case 'H' -> sb.append(String.format("%02d", t.getHour()));
                case 'M' -> sb.append(String.format("%02d", t.getMinute()));
                case 'S' -> sb.append(String.format("%02d", t.getSecond()));
                case 'b' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'j' -> sb.append(String.format("%03d", t.getDayOfYear()));
                case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
                case 'I' -> sb.append(String.format("%02d", (t.getHour() + 11) % 12 + 1));
                case 'Z' -> sb.append(t.getZone().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'F' -> sb.append(t.format(DateTimeFormatter.ISO_LOCAL_DATE));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(d);
            }
        }
        return sb.toString();
    }
}
