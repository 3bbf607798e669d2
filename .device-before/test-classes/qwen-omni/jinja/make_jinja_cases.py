"""Reference outputs of Jinja2 for JinjaCasesTest, configured as transformers renders chat templates
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson,
raise_exception). Run: python3 make_jinja_cases.py > jinja_cases.json (needs jinja2 3.x)."""
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

micro = [
    "  {% if true %}\n    yes\n  {% endif %}\nend",
    "x \n {{- 'a' -}} \n y",
    "a\n\n{%- if true -%}\n\nb{%- endif %}",
    "  {{ 'a' }}\n",
    "{{ 'a' }}\n\n",
    "a{# c #}\nb",
    "a\n  {# c #}\nb",
    "{%+ if true %}x{% endif +%}\ny",
    "  {%- if true %}\n  x\n  {%+ endif %}\n",
    "{% set x = 1 %}{% set ns = namespace(y=1) %}{% for i in [1,2,3] %}{% set x = i %}{% set ns.y = i %}{% endfor %}{{ x }} {{ ns.y }}",
    "{{ [1,2,3][::-1] }} {{ 'abcdef'[1:4] }} {{ 'abc'[-1] }} {{ ['a','b','c'][1:] }} {{ 'abc'[::-2] }} {{ [1,2,3,4,5][-2:0:-2] }}",
    "{% for x in ['a','b','c'] %}{{ loop.index0 }}{{ x }}{{ loop.index }}{{ loop.revindex }}{% if not loop.last %},{% endif %}{% endfor %}",
    "{{ '\\n\\nhi\\n'.strip('\\n') }}|{{ 'a</think>b'.split('</think>')[-1] }}|{{ '  x '.lstrip() }}|{{ 'abc'.startswith('ab') }}|{{ ' a  b\\tc '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.rsplit(' ', 1) }}",
    "{{ {'a': [1, 'é\\n\"\\\\', none, true, 2.5, -0.0001, 1e20]}|tojson }}|{{ {'a': [1], 'b': {}, 'c': []}|tojson(indent=2) }}|{{ 'x'|tojson }}",
    "{{ missing }}|{{ missing is defined }}|{{ missing or 'd' }}|{{ missing is undefined }}|{{ missing|length }}",
    "{{ none }} {{ true }} {{ 1/2 }} {{ 7//2 }} {{ -7 % 3 }} {{ 0.00001 }} {{ 10 * 10.0 }} {{ 'a' ~ 'b' ~ 3 }} {{ 2**10 }} {{ 1e16 }} {{ 123456.789 }} {{ 0.1 + 0.2 }}",
    "{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}",
    "{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}",
    "{% for k, v in {'a': 1, 'b': none}.items() %}{{ k }}={{ v }};{% endfor %}{{ {'a': 1}.get('b', 'dflt') }}{{ {'a': 1}.keys()|list }}",
    "{{ ['a','b']|join(', ') }} {{ 'x'|upper }} {{ [3,1,2]|sort|first }} {{ none|default('d') }} {{ nothing|default('d') }} {{ ''|default('e', true) }} {{ 'abc'|length }} {{ [{'n': 1}, {'n': 2}, {'n': 4}]|selectattr('n', 'even')|map(attribute='n')|list }}",
    "{{ 'yes' if 'a' in 'cat' else 'no' }} {{ 'b' not in ['a'] }} {{ 'x' is string }} {{ 1 is not none }} {{ {} is not mapping }} {{ 3 is divisibleby 3 }} {{ 'x' if false }}|",
    "{% set x %}hi {{ 1 + 1 }}{% endset %}[{{ x }}]{% set a, b = 1, 2 %}{{ a }}{{ b }}",
    "{{ ['a', 'b'] }} {{ {'k': 'v', 'n': [1, none, true]} }} {{ ('t', 1) }} {{ \"it's\" }}",
    "{{ '  x  '|trim }}|{{ 'Hello World'|lower|title }}|{{ 'abc'|reverse }}|{{ [1,2,3]|reverse|list }}|{{ 'aXbX'|replace('X', '-') }}|{{ 3.7|int }}|{{ '12'|int + 1 }}|{{ -3|abs }}|{{ [1,2,3]|last }}|{{ [1,2,2,3]|unique|list }}|{{ [1,2,3]|sum }}|{{ [4,1,9]|max }}",
    "{{ 'line1\\nline2\\n\\nline4'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}",
    "{% for m in messages %}{{ loop.previtem is defined }}{{ loop.nextitem.role if loop.nextitem is defined else '-' }}{% endfor %}",
    "{{ messages[0]['content'] }}{{ messages[-1].role }}{{ messages|length - 1 }}{{ (messages|length - 1) - 0 }}",
    "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}{{ index }}{{ message.role[0] }}{%- endfor %}",
    "{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='content')|first }}",
    "{% if messages[0].role == 'system' %}{% set sys = messages[0].content %}{% set rest = messages[1:] %}{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}[{{ sys }}]{{ rest|length }}",
    "{{ raise_exception('bad role') }}",
    "{% for x in 5 %}{% endfor %}",
    "{{ 'a' + 1 }}",
]

micro_context = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                              {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}]}

qwen3 = json.load(open(sys.argv[1]))["chat_template"]
omni = open(sys.argv[2]).read()

tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city, ° and “quotes”",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}]
conversations = [
    ({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True}),
    ({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True, "enable_thinking": False}),
    ({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True, "enable_thinking": True}),
    ({"messages": [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Q1"},
                   {"role": "assistant", "content": "<think>\nR1\n</think>\n\nA1"}, {"role": "user", "content": "Q2"},
                   {"role": "assistant", "content": "<think>\n\nR2\n\n</think>\n\n\nA2"}], "add_generation_prompt": False}),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "no think here"}],
      "add_generation_prompt": False}),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "reasoning_content": "R"},
                   {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2", "reasoning_content": "\nR2\n"}],
      "add_generation_prompt": True}),
    ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
      "tools": tools, "add_generation_prompt": True}),
    ({"messages": [{"role": "user", "content": "Weather in Paris?"}],
      "tools": tools, "add_generation_prompt": True}),
    ({"messages": [{"role": "user", "content": "Weather in Paris and Rome?"},
                   {"role": "assistant", "content": "<think>\nCall twice.\n</think>\n\nLet me check.",
                    "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                                   {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
                   {"role": "tool", "content": "18°C"}, {"role": "tool", "content": "21°C"},
                   {"role": "assistant", "content": "<think>\nBoth known.\n</think>\n\nParis 18°C, Rome 21°C."}],
      "tools": tools, "add_generation_prompt": False}),
    ({"messages": [{"role": "user", "content": "Q"},
                   {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": {"x": [1, 2.5, None, True]}}]},
                   {"role": "tool", "content": "ok"}],
      "add_generation_prompt": True}),
    ({"messages": [{"role": "user", "content": "<tool_response>\nx\n</tool_response>"}, {"role": "user", "content": "real"},
                   {"role": "assistant", "content": "<think>r</think>a"}], "add_generation_prompt": False}),
]
omni_conversations = [
    ({"messages": [{"role": "user", "content": [{"type": "audio", "audio": 130}, {"type": "text", "text": "What is it?"}]}],
      "add_generation_prompt": True}),
    ({"messages": [{"role": "system", "content": "S"},
                   {"role": "user", "content": [{"type": "audio", "audio": 1}, {"type": "text", "text": "A"},
                                                {"type": "audio", "audio": 2}]},
                   {"role": "assistant", "content": "<think>\nR\n</think>\n\nAns"}], "add_generation_prompt": False}),
    ({"messages": [{"role": "user", "content": "text only"}, {"role": "assistant", "content": "<think>\nR\n</think>\n\nAns"}],
      "add_generation_prompt": False}),
]


def case(template, context, name):
    try:
        return {"name": name, "template": template, "context": context,
                "output": env.from_string(template).render(**context)}
    except Exception as e:  # noqa: BLE001 - the error is the expected outcome
        return {"name": name, "template": template, "context": context, "error": type(e).__name__ + ": " + str(e)}


cases = [case(t, micro_context, "micro %d" % i) for i, t in enumerate(micro)]
base = {"tools": None, "documents": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
cases += [case(qwen3, {**base, **c}, "qwen3 %d" % i) for i, c in enumerate(conversations)]
cases += [case(omni, {**base, **c}, "omni %d" % i) for i, c in enumerate(omni_conversations)]
json.dump(cases, sys.stdout, ensure_ascii=False, indent=1)
