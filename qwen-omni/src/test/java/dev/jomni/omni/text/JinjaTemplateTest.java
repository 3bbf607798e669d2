package dev.jomni.omni.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Jinja subset against Jinja2's documented behaviour, as transformers configures it. */
class JinjaTemplateTest {
    private static String render(String template) {
        return JinjaTemplate.compile(template).render(Map.of());
    }

    @Test
    void blockTagsOnTheirOwnLineLeaveNoWhitespace() {
        // lstrip_blocks removes the indentation before a block tag, trim_blocks the newline after it.
        assertEquals("    yes\nend", render("  {% if true %}\n    yes\n  {% endif %}\nend"));
    }

    @Test
    void dashMarkersStripAllWhitespaceOnThatSide() {
        assertEquals("xay", render("x \n {{- 'a' -}} \n y"));
        assertEquals("ab", render("a\n\n{%- if true -%}\n\nb{%- endif %}"));
    }

    @Test
    void variableTagsKeepIndentationAndOneTrailingNewlineOfTheTemplateIsDropped() {
        assertEquals("  a", render("  {{ 'a' }}\n"));
        assertEquals("a\n", render("{{ 'a' }}\n\n"));
    }

    @Test
    void commentsAreRemovedWithTheNewlineAfterThem() {
        assertEquals("ab", render("a{# c #}\nb"));
    }

    @Test
    void setInsideALoopStaysInTheLoopButNamespaceAttributesEscape() {
        assertEquals("1 3", render("{% set x = 1 %}{% set ns = namespace(y=1) %}{% for i in [1,2,3] %}"
                + "{% set x = i %}{% set ns.y = i %}{% endfor %}{{ x }} {{ ns.y }}"));
    }

    @Test
    void slicesFollowPython() {
        assertEquals("[3, 2, 1] bcd c ['b', 'c'] ca", render("{{ [1,2,3][::-1] }} {{ 'abcdef'[1:4] }} {{ 'abc'[-1] }} "
                + "{{ ['a','b','c'][1:] }} {{ 'abc'[::-2] }}"));
    }

    @Test
    void loopVariables() {
        assertEquals("0a1,1b2,2c3|3", render("{% for x in ['a','b','c'] %}{{ loop.index0 }}{{ x }}{{ loop.index }}"
                + "{% if not loop.last %},{% endif %}{% endfor %}|{% for x in 'abc' %}{% if loop.first %}{{ loop.length }}{% endif %}{% endfor %}"));
    }

    @Test
    void pythonStringMethods() {
        assertEquals("hi|b|x |True|False|['a', 'b', 'c']|['a', 'b c']|a-b",
                render("{{ '\\n\\nhi\\n'.strip('\\n') }}|{{ 'a</think>b'.split('</think>')[-1] }}|{{ '  x '.lstrip() }}|"
                        + "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'y')) }}|{{ ' a  b\\tc '.split() }}|"
                        + "{{ 'a b c'.split(' ', 1) }}|{{ 'a b'.replace(' ', '-') }}"));
    }

    @Test
    void tojsonIsPythonJsonDumpsWithoutAsciiEscaping() {
        assertEquals("{\"a\": [1, \"é\\n\", null, true, 2.5]}", render("{{ {'a': [1, 'é\\n', none, true, 2.5]}|tojson }}"));
        assertEquals("{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}", render("{{ {'a': [1], 'b': {}}|tojson(indent=2) }}"));
    }

    @Test
    void undefinedPrintsNothingAndIsFalse() {
        assertEquals("|False|d|True", render("{{ missing }}|{{ missing is defined }}|{{ missing or 'd' }}|{{ missing is undefined }}"));
    }

    @Test
    void attributeOfUndefinedIsAnError() {
        var e = assertThrows(JinjaException.class, () -> render("{{ missing.field }}"));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void pythonPrintingAndArithmetic() {
        assertEquals("None True 0.5 3 2 1e-05 100.0 ab", render("{{ none }} {{ true }} {{ 1/2 }} {{ 7//2 }} {{ -7 % 3 }} "
                + "{{ 0.00001 }} {{ 10 * 10.0 }} {{ 'a' ~ 'b' }}"));
    }

    @Test
    void loopFilterAndElse() {
        assertEquals("24|empty", render("{% for x in [1,2,3,4] if x is even %}{{ x }}{% else %}none{% endfor %}|"
                + "{% for x in [] %}x{% else %}empty{% endfor %}"));
    }

    @Test
    void breakAndContinue() {
        assertEquals("13", render("{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}"
                + "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"));
    }

    @Test
    void macrosWithDefaults() {
        assertEquals("Hi Ann! Hi Bo?", render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                + "{{ greet('Ann') }} {{ greet('Bo', punct='?') }}"));
    }

    @Test
    void dictItemsUnpackInLoops() {
        assertEquals("a=1;b=None;", render("{% for k, v in {'a': 1, 'b': none}.items() %}{{ k }}={{ v }};{% endfor %}"));
    }

    @Test
    void filters() {
        assertEquals("a, b X 1 None d 3 [2, 4]", render("{{ ['a','b']|join(', ') }} {{ 'x'|upper }} {{ [3,1,2]|sort|first }} "
                + "{{ none|default('d') }} {{ nothing|default('d') }} {{ 'abc'|length }} "
                + "{{ [{'n': 1}, {'n': 2}, {'n': 4}]|selectattr('n', 'even')|map(attribute='n')|list }}"));
    }

    @Test
    void testsAndConditionals() {
        assertEquals("yes True True True False", render("{{ 'yes' if 'a' in 'cat' else 'no' }} {{ 'b' not in ['a'] }} "
                + "{{ 'x' is string }} {{ 1 is not none }} {{ {} is not mapping }}"));
    }

    @Test
    void setBlockCapturesText() {
        assertEquals("[hi]", render("{% set x %}hi{% endset %}[{{ x }}]"));
    }

    @Test
    void raiseExceptionFailsWithItsMessage() {
        var e = assertThrows(JinjaException.class, () -> render("{{ raise_exception('Conversation roles must alternate') }}"));
        assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
    }

    @Test
    void syntaxErrorsSayWhereAndWhat() {
        String[][] cases = {
            {"a\n{% if %}x{% endif %}", "line 2"},
            {"{% for x in y %}", "endfor"},
            {"{% frobnicate %}", "frobnicate"},
            {"{{ 'unclosed }}", "unclosed string"},
        };
        for (var c : cases) {
            var e = assertThrows(JinjaException.class, () -> JinjaTemplate.compile(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), c[0] + " -> " + e.getMessage());
        }
    }

    @Test
    void variablesFromJava() {
        var t = JinjaTemplate.compile("{% for m in messages %}{{ m.role }}:{{ m['content'] }} {% endfor %}{{ messages|length }}");
        assertEquals("user:hi assistant:yo 2", t.render(Map.of("messages", List.of(
                Map.of("role", "user", "content", "hi"), Map.of("role", "assistant", "content", "yo")))));
    }
}
