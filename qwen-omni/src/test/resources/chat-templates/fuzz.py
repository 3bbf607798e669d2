#!/usr/bin/env python3
"""Random conversations through every template here, rendered by Jinja2 exactly as render.py does
(its make_env: transformers' settings, the fixed clock), written to fuzz_cases.json.gz.

Where cases.json holds hand-picked conversations, these are random ones: roles in any order, text
made of pieces that stress whitespace control, quoting and the templates' own markers, content as
strings, part lists, None or arbitrary values, tool calls with dict or string arguments, and the
usual extra variables. Every expected error is recorded with its message, as in cases.json.

Usage: python3 fuzz.py [SEED [PER_TEMPLATE]]   (the stored file: seed 7, 40 per template)
"""
import gzip
import json
import random
import sys
from pathlib import Path

root = Path(__file__).resolve().parent
sys.path.insert(0, str(root))
import render  # noqa: E402  (render.py beside this file)

env = render.make_env()
rnd = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 40
PIECES = ["hi", " ", "\n", "\n\n", "  pad  ", "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
          "{{ x }}", "{% if %}", "'", '"', "\\", "\t", "é", "🙂", "中文", "ANSWER: B", "<|im_end|>", "[INST]", "a,b", "0", "None"]
def text():
    return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 6)))
def value(depth=0):
    r = rnd.random()
    if depth > 2 or r < 0.3: return text()
    if r < 0.4: return rnd.randint(-5, 100)
    if r < 0.45: return rnd.choice([1.5, 0.1, -2.0, 1e20, 3.0])
    if r < 0.5: return rnd.choice([True, False, None])
    if r < 0.75: return {rnd.choice(["a", "b", "location", "unit", "x y", "é"]): value(depth + 1) for _ in range(rnd.randint(0, 3))}
    return [value(depth + 1) for _ in range(rnd.randint(0, 3))]
def part():
    t = rnd.choice(["text", "audio", "image", "video", "audio_url", "image_url", "other"])
    if t == "text": return {"type": "text", "text": text()}
    if t == "audio": return {"type": "audio", "audio": "a.wav"}
    if t == "audio_url": return {"type": "audio_url", "audio_url": {"url": "file:///a.wav"}}
    if t == "image": return {"type": "image", "image": "i.png"}
    if t == "image_url": return {"type": "image_url", "image_url": {"url": "x"}}
    if t == "video": return {"type": "video", "video": "v.mp4"}
    return {"type": "other"}
def content(role):
    r = rnd.random()
    if r < 0.6: return text()
    if r < 0.8: return [part() for _ in range(rnd.randint(0, 3))]
    if r < 0.85: return None
    if r < 0.9 and role == "tool": return value()
    return text()
def message(role):
    m = {"role": role, "content": content(role)}
    if role == "assistant" and rnd.random() < 0.3:
        m["tool_calls"] = [{"id": rnd.choice(["call_1", "abcdefghi"]), "type": "function",
                            "function": {"name": rnd.choice(["f", "get_weather"]),
                                         "arguments": rnd.choice([value(), json.dumps({"a": 1}), {"q": text()}])}}
                           for _ in range(rnd.randint(1, 2))]
    if role == "assistant" and rnd.random() < 0.2: m["reasoning_content"] = text()
    if role == "tool" and rnd.random() < 0.5: m["tool_call_id"] = "call_1"; m["name"] = "f"
    return m
def conversation():
    roles = []
    if rnd.random() < 0.4: roles.append("system")
    for i in range(rnd.randint(1, 5)):
        roles.append(rnd.choice(["user", "assistant", "user", "tool"]) if rnd.random() < 0.3 else ["user", "assistant"][i % 2])
    return [message(r) for r in roles]
TOOL = {"type": "function", "function": {"name": "f", "description": "d & <b>", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}
out = []
for model in sorted(p.name for p in root.iterdir() if (p / "template.jinja").is_file()):
    src = (root / model / "template.jinja").read_text()
    tmpl = env.from_string(src)
    for k in range(N):
        msgs = conversation()
        tools = rnd.choice([None, None, [TOOL], [TOOL, {"type": "function", "function": {"name": "g"}}], []])
        kw = rnd.choice([{}, {}, {"enable_thinking": False}, {"enable_thinking": True}, {"tools_in_user_message": False}, {"date_string": "01 Jan 2025"}])
        gen = rnd.random() < 0.5
        case = {"name": f"{model} fuzz{k}", "template": model, "messages": msgs, "tools": tools, "add_generation_prompt": gen,
                "extra_kwargs": kw, "bos_token": "<s>", "eos_token": "</s>"}
        try:
            case["expected"] = tmpl.render(messages=msgs, tools=tools, documents=None, add_generation_prompt=gen, bos_token="<s>", eos_token="</s>", **kw)
        except Exception as e:
            case["expected_error"] = str(e)
            case["error_origin"] = "raise_exception" if isinstance(e, render.RaisedByTemplate) else "runtime:" + type(e).__name__
        out.append(case)
with gzip.GzipFile(root / "fuzz_cases.json.gz", "wb", mtime=0) as f:
    f.write(json.dumps(out, ensure_ascii=False, indent=0).encode("utf-8"))
print(len(out), "cases,", sum("expected" in c for c in out), "rendered; outcomes:", sorted(set(c.get("error_origin", "ok") for c in out)))
