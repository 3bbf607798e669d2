package dev.jomni.omni.text;

import dev.jomni.omni.text.JinjaLexer.Token;
import dev.jomni.omni.text.JinjaLexer.Type;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Recursive-descent parser for the Jinja subset chat templates use, with Jinja2's operator
 * precedence (parser.py): conditional expression, {@code or}, {@code and}, {@code not},
 * comparisons and {@code in}, {@code + -}, {@code ~}, {@code * / // %}, {@code **}, unary minus,
 * then postfix access, calls, filters and tests.
 */
final class JinjaParser {
    // ---------------------------------------------------------------- syntax tree

    sealed interface Node {}

    record Text(String text) implements Node {}

    record Output(Expr expr, int line) implements Node {}

    record If(List<Expr> conditions, List<List<Node>> bodies, List<Node> orElse, int line) implements Node {}

    record For(List<String> targets, Expr iterable, Expr filter, List<Node> body, List<Node> orElse, int line) implements Node {}

    /** {@code target} is a {@link Name}, an {@link Attr} of a namespace, or a {@link TupleLit} of names. */
    record Assign(Expr target, Expr value, int line) implements Node {}

    record AssignBlock(String name, List<Node> body, int line) implements Node {}

    record Macro(String name, List<String> params, List<Expr> defaults, List<Node> body) implements Node {}

    record FilterBlock(String filter, List<Expr> args, Map<String, Expr> kwargs, List<Node> body, int line) implements Node {}

    record LoopControl(boolean isBreak, int line) implements Node {}

    sealed interface Expr {}

    record Const(Object value) implements Expr {}

    record Name(String name) implements Expr {}

    record Attr(Expr target, String name) implements Expr {}

    record Item(Expr target, Expr key) implements Expr {}

    record Slice(Expr target, Expr start, Expr stop, Expr step) implements Expr {}

    record Call(Expr function, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

    record Filter(Expr value, String name, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

    record Test(Expr value, String name, List<Expr> args, boolean negated) implements Expr {}

    record Unary(String op, Expr operand) implements Expr {}

    /** Arithmetic, {@code ~}, {@code and}, {@code or}. */
    record Binary(String op, Expr left, Expr right) implements Expr {}

    /** A comparison chain {@code a < b <= c}: ops are {@code == != < <= > >= in notin}. */
    record Compare(Expr first, List<String> ops, List<Expr> rest) implements Expr {}

    record Conditional(Expr condition, Expr ifTrue, Expr ifFalse) implements Expr {}

    record ListLit(List<Expr> items) implements Expr {}

    record TupleLit(List<Expr> items) implements Expr {}

    record DictLit(List<Expr> keys, List<Expr> values) implements Expr {}

    // ---------------------------------------------------------------- parser

    private static final Set<String> COMPARE_OPS = Set.of("==", "!=", "<", "<=", ">", ">=");

    private final List<Token> tokens;
    private int pos;

    private JinjaParser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Node> parse(String source) {
        var p = new JinjaParser(JinjaLexer.tokenize(source));
        return p.body();
    }

    private Token peek() {
        return tokens.get(pos);
    }

    private Token peek(int ahead) {
        return tokens.get(Math.min(pos + ahead, tokens.size() - 1));
    }

    private Token next() {
        return tokens.get(pos++);
    }

    private JinjaException error(Token at, String what) {
        return new JinjaException("line " + at.line() + ": " + what);
    }

    private void expectOp(String op) {
        Token t = next();
        if (!t.isOp(op)) throw error(t, "expected '" + op + "', found '" + t.text() + "'");
    }

    private String expectName() {
        Token t = next();
        if (t.type() != Type.NAME) throw error(t, "expected a name, found '" + t.text() + "'");
        return t.text();
    }

    private void expectName(String name) {
        Token t = next();
        if (!t.isName(name)) throw error(t, "expected '" + name + "', found '" + t.text() + "'");
    }

    private void expectBlockEnd() {
        Token t = next();
        if (t.type() != Type.BLOCK_END) throw error(t, "expected '%}', found '" + t.text() + "'");
    }

    /**
     * Nodes up to a block tag whose name is one of {@code ends} (left unread after its {@code {%});
     * with no ends, up to the end of the template.
     */
    private List<Node> body(String... ends) {
        var nodes = new ArrayList<Node>();
        while (true) {
            Token t = peek();
            switch (t.type()) {
                case EOF -> {
                    if (ends.length > 0) throw error(t, "missing {% " + ends[ends.length - 1] + " %}");
                    return nodes;
                }
                case TEXT -> nodes.add(new Text((String) next().value()));
                case VAR_BEGIN -> {
                    next();
                    Expr e = tuple(true);
                    Token end = next();
                    if (end.type() != Type.VAR_END) throw error(end, "expected '}}', found '" + end.text() + "'");
                    nodes.add(new Output(e, t.line()));
                }
                case BLOCK_BEGIN -> {
                    Token name = peek(1);
                    for (String end : ends) {
                        if (name.isName(end)) {
                            next();
                            return nodes;
                        }
                    }
                    next();
                    Node n = statement();
                    if (n != null) nodes.add(n);
                }
                default -> throw error(t, "unexpected '" + t.text() + "'");
            }
        }
    }

    private Node statement() {
        Token t = peek();
        String name = expectName();
        switch (name) {
            case "if" -> {
                var conditions = new ArrayList<Expr>();
                var bodies = new ArrayList<List<Node>>();
                conditions.add(expression());
                expectBlockEnd();
                bodies.add(body("elif", "else", "endif"));
                while (true) {
                    String tag = expectName();
                    if (tag.equals("elif")) {
                        conditions.add(expression());
                        expectBlockEnd();
                        bodies.add(body("elif", "else", "endif"));
                    } else if (tag.equals("else")) {
                        expectBlockEnd();
                        var orElse = body("endif");
                        expectName("endif");
                        expectBlockEnd();
                        return new If(conditions, bodies, orElse, t.line());
                    } else {
                        expectBlockEnd();
                        return new If(conditions, bodies, List.of(), t.line());
                    }
                }
            }
            case "for" -> {
                var targets = new ArrayList<String>();
                boolean paren = peek().isOp("(");
                if (paren) next();
                targets.add(expectName());
                while (peek().isOp(",")) {
                    next();
                    targets.add(expectName());
                }
                if (paren) expectOp(")");
                expectName("in");
                Expr iterable = tuple(false);
                Expr filter = null;
                if (peek().isName("if")) {
                    next();
                    filter = expression();
                }
                if (peek().isName("recursive")) throw error(peek(), "recursive loops are not supported");
                expectBlockEnd();
                var body = body("else", "endfor");
                List<Node> orElse = List.of();
                if (expectName().equals("else")) {
                    expectBlockEnd();
                    orElse = body("endfor");
                    expectName("endfor");
                }
                expectBlockEnd();
                return new For(targets, iterable, filter, body, orElse, t.line());
            }
            case "set" -> {
                Expr target = assignTarget();
                if (peek().isOp("=")) {
                    next();
                    Expr value = tuple(true);
                    expectBlockEnd();
                    return new Assign(target, value, t.line());
                }
                if (!(target instanceof Name n)) throw error(t, "a block set needs a plain name");
                expectBlockEnd();
                var body = body("endset");
                expectName("endset");
                expectBlockEnd();
                return new AssignBlock(n.name(), body, t.line());
            }
            case "macro" -> {
                String macro = expectName();
                expectOp("(");
                var params = new ArrayList<String>();
                var defaults = new ArrayList<Expr>();
                while (!peek().isOp(")")) {
                    if (!params.isEmpty()) expectOp(",");
                    if (peek().isOp(")")) break;
                    params.add(expectName());
                    if (peek().isOp("=")) {
                        next();
                        defaults.add(expression());
                    } else {
                        defaults.add(null);
                    }
                }
                expectOp(")");
                expectBlockEnd();
                var body = body("endmacro");
                expectName("endmacro");
                expectBlockEnd();
                return new Macro(macro, params, defaults, body);
            }
            case "filter" -> {
                String filter = expectName();
                var args = new ArrayList<Expr>();
                var kwargs = new LinkedHashMap<String, Expr>();
                if (peek().isOp("(")) {
                    next();
                    callArgs(args, kwargs);
                }
                expectBlockEnd();
                var body = body("endfilter");
                expectName("endfilter");
                expectBlockEnd();
                return new FilterBlock(filter, args, kwargs, body, t.line());
            }
            case "break", "continue" -> {
                expectBlockEnd();
                return new LoopControl(name.equals("break"), t.line());
            }
            case "generation" -> {
                // transformers' AssistantTracker marks assistant tokens here; the text is the body's.
                expectBlockEnd();
                var body = body("endgeneration");
                expectName("endgeneration");
                expectBlockEnd();
                return new If(List.of(new Const(true)), List.of(body), List.of(), t.line());
            }
            case "do" -> {
                Expr e = expression();
                expectBlockEnd();
                return new Assign(new Name("_"), e, t.line());
            }
            default -> throw error(t, "unknown tag '" + name + "'");
        }
    }

    private Expr assignTarget() {
        Token t = peek();
        String first = expectName();
        if (peek().isOp(".")) {
            next();
            return new Attr(new Name(first), expectName());
        }
        if (!peek().isOp(",")) return new Name(first);
        var names = new ArrayList<Expr>();
        names.add(new Name(first));
        while (peek().isOp(",")) {
            next();
            names.add(new Name(expectName()));
        }
        if (names.isEmpty()) throw error(t, "bad assignment target");
        return new TupleLit(names);
    }

    /** An expression, or a tuple of them when commas follow ({@code {{ a, b }}}, {@code set x = a, b}). */
    private Expr tuple(boolean withConditional) {
        Expr first = withConditional ? expression() : or();
        if (!peek().isOp(",")) return first;
        var items = new ArrayList<Expr>();
        items.add(first);
        while (peek().isOp(",")) {
            next();
            if (endsTuple(peek())) break;
            items.add(withConditional ? expression() : or());
        }
        return new TupleLit(items);
    }

    private static boolean endsTuple(Token t) {
        return t.type() == Type.BLOCK_END || t.type() == Type.VAR_END || t.isOp(")") || t.isName("if");
    }

    Expr expression() {
        Expr e = or();
        while (peek().isName("if")) {
            next();
            Expr condition = or();
            Expr orElse = null;
            if (peek().isName("else")) {
                next();
                orElse = expression();
            }
            e = new Conditional(condition, e, orElse);
        }
        return e;
    }

    private Expr or() {
        Expr e = and();
        while (peek().isName("or")) {
            next();
            e = new Binary("or", e, and());
        }
        return e;
    }

    private Expr and() {
        Expr e = not();
        while (peek().isName("and")) {
            next();
            e = new Binary("and", e, not());
        }
        return e;
    }

    private Expr not() {
        if (peek().isName("not")) {
            next();
            return new Unary("not", not());
        }
        return compare();
    }

    private Expr compare() {
        Expr first = math1();
        var ops = new ArrayList<String>();
        var rest = new ArrayList<Expr>();
        while (true) {
            Token t = peek();
            if (t.type() == Type.OP && COMPARE_OPS.contains(t.text())) {
                next();
                ops.add(t.text());
            } else if (t.isName("in")) {
                next();
                ops.add("in");
            } else if (t.isName("not") && peek(1).isName("in")) {
                next();
                next();
                ops.add("notin");
            } else {
                break;
            }
            rest.add(math1());
        }
        return ops.isEmpty() ? first : new Compare(first, ops, rest);
    }

    private Expr math1() {
        Expr e = concat();
        while (peek().isOp("+") || peek().isOp("-")) {
            String op = next().text();
            e = new Binary(op, e, concat());
        }
        return e;
    }

    private Expr concat() {
        Expr e = math2();
        while (peek().isOp("~")) {
            next();
            e = new Binary("~", e, math2());
        }
        return e;
    }

    private Expr math2() {
        Expr e = pow();
        while (peek().isOp("*") || peek().isOp("/") || peek().isOp("//") || peek().isOp("%")) {
            String op = next().text();
            e = new Binary(op, e, pow());
        }
        return e;
    }

    private Expr pow() {
        Expr e = unary(true);
        while (peek().isOp("**")) {
            next();
            e = new Binary("**", e, unary(true));
        }
        return e;
    }

    private Expr unary(boolean withFilter) {
        Expr e;
        if (peek().isOp("-") || peek().isOp("+")) {
            String op = next().text();
            e = new Unary(op, unary(false));
        } else {
            e = primary();
        }
        e = postfix(e);
        return withFilter ? filters(e) : e;
    }

    private Expr primary() {
        Token t = next();
        switch (t.type()) {
            case NAME -> {
                return switch (t.text()) {
                    case "true", "True" -> new Const(true);
                    case "false", "False" -> new Const(false);
                    case "none", "None" -> new Const(null);
                    default -> new Name(t.text());
                };
            }
            case STRING -> {
                var sb = new StringBuilder((String) t.value());
                while (peek().type() == Type.STRING) sb.append((String) next().value());
                return new Const(sb.toString());
            }
            case INT, FLOAT -> {
                return new Const(t.value());
            }
            case OP -> {
                switch (t.text()) {
                    case "(" -> {
                        if (peek().isOp(")")) {
                            next();
                            return new TupleLit(List.of());
                        }
                        Expr e = expression();
                        if (peek().isOp(",")) {
                            var items = new ArrayList<Expr>();
                            items.add(e);
                            while (peek().isOp(",")) {
                                next();
                                if (peek().isOp(")")) break;
                                items.add(expression());
                            }
                            e = new TupleLit(items);
                        }
                        expectOp(")");
                        return e;
                    }
                    case "[" -> {
                        var items = new ArrayList<Expr>();
                        while (!peek().isOp("]")) {
                            if (!items.isEmpty()) expectOp(",");
                            if (peek().isOp("]")) break;
                            items.add(expression());
                        }
                        expectOp("]");
                        return new ListLit(items);
                    }
                    case "{" -> {
                        var keys = new ArrayList<Expr>();
                        var values = new ArrayList<Expr>();
                        while (!peek().isOp("}")) {
                            if (!keys.isEmpty()) expectOp(",");
                            if (peek().isOp("}")) break;
                            keys.add(expression());
                            expectOp(":");
                            values.add(expression());
                        }
                        expectOp("}");
                        return new DictLit(keys, values);
                    }
                    default -> throw error(t, "unexpected '" + t.text() + "'");
                }
            }
            default -> throw error(t, "unexpected '" + t.text() + "'");
        }
    }

    private Expr postfix(Expr e) {
        while (true) {
            Token t = peek();
            if (t.isOp(".")) {
                next();
                Token attr = next();
                if (attr.type() == Type.NAME) e = new Attr(e, attr.text());
                else if (attr.type() == Type.INT) e = new Item(e, new Const(attr.value()));
                else throw error(attr, "expected an attribute name after '.'");
            } else if (t.isOp("[")) {
                next();
                e = subscript(e);
            } else if (t.isOp("(")) {
                next();
                var args = new ArrayList<Expr>();
                var kwargs = new LinkedHashMap<String, Expr>();
                callArgs(args, kwargs);
                e = new Call(e, args, kwargs);
            } else {
                return e;
            }
        }
    }

    private Expr subscript(Expr target) {
        Expr start = null, stop = null, step = null;
        boolean slice = false;
        if (!peek().isOp(":")) start = expression();
        if (peek().isOp(":")) {
            slice = true;
            next();
            if (!peek().isOp(":") && !peek().isOp("]")) stop = expression();
            if (peek().isOp(":")) {
                next();
                if (!peek().isOp("]")) step = expression();
            }
        }
        expectOp("]");
        return slice ? new Slice(target, start, stop, step) : new Item(target, start);
    }

    /** Arguments after an opening parenthesis, through the closing one. */
    private void callArgs(List<Expr> args, Map<String, Expr> kwargs) {
        while (!peek().isOp(")")) {
            if (!args.isEmpty() || !kwargs.isEmpty()) expectOp(",");
            if (peek().isOp(")")) break;
            if (peek().type() == Type.NAME && peek(1).isOp("=")) {
                String key = next().text();
                next();
                kwargs.put(key, expression());
            } else {
                if (!kwargs.isEmpty()) throw error(peek(), "positional argument after keyword argument");
                args.add(expression());
            }
        }
        expectOp(")");
    }

    private Expr filters(Expr e) {
        while (true) {
            Token t = peek();
            if (t.isOp("|")) {
                next();
                String name = expectName();
                var args = new ArrayList<Expr>();
                var kwargs = new LinkedHashMap<String, Expr>();
                if (peek().isOp("(")) {
                    next();
                    callArgs(args, kwargs);
                }
                e = new Filter(e, name, args, kwargs);
            } else if (t.isName("is")) {
                next();
                boolean negated = false;
                if (peek().isName("not")) {
                    next();
                    negated = true;
                }
                String name = expectName();
                var args = new ArrayList<Expr>();
                Token a = peek();
                if (a.isOp("(")) {
                    next();
                    callArgs(args, new LinkedHashMap<>());
                } else if ((a.type() == Type.NAME || a.type() == Type.STRING || a.type() == Type.INT
                        || a.type() == Type.FLOAT || a.isOp("[") || a.isOp("{"))
                        && !a.isName("else") && !a.isName("or") && !a.isName("and")) {
                    args.add(postfix(primary()));
                }
                e = new Test(e, name, args, negated);
            } else if (t.isOp("(")) {
                next();
                var args = new ArrayList<Expr>();
                var kwargs = new LinkedHashMap<String, Expr>();
                callArgs(args, kwargs);
                e = new Call(e, args, kwargs);
            } else {
                return e;
            }
        }
    }
}
