"""Chat template rendering with tiny templates (no model file)."""
from __future__ import annotations

import pytest

from fastcoder.tokenizer import (ChatTemplate, ChatTemplateError, InvalidChatTemplateError, NoChatTemplateError,
                                 Tokenizer)
from tests.unit.test_tokenizer import tiny_metadata

CHATML = ("{% for message in messages %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
          "{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def test_chatml_rendering():
    template = ChatTemplate(CHATML)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert template.render(messages) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert template.render(messages, add_generation_prompt=False).endswith("hi<|im_end|>\n")


def test_trim_and_lstrip_blocks_like_transformers():
    source = "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}\n"
    # trim_blocks eats the newline after a tag, lstrip_blocks the indentation before one.
    assert ChatTemplate(source).render([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]) \
        == "[a]\n[b]\n"


def test_special_token_variables_and_kwargs():
    template = ChatTemplate("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}{% if flag %}!{% endif %}",
                            {"bos_token": "<s>", "eos_token": "</s>"})
    assert template.render([{"role": "user", "content": "x"}]) == "<s>x</s>"
    assert template.render([{"role": "user", "content": "x"}], flag=True, bos_token="[B]") == "[B]x</s>!"


def test_tojson_is_plain_json_without_html_escaping():
    template = ChatTemplate("{{ tools | tojson }}|{{ messages[0] | tojson(indent=2) }}")
    out = template.render([{"role": "user", "content": "<é>"}], tools=[{"name": "f&g"}])
    assert out == '[{"name": "f&g"}]|{\n  "role": "user",\n  "content": "<é>"\n}'


def test_raise_exception_becomes_a_typed_error():
    template = ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}"
                            "{% endif %}ok")
    assert template.render([{"role": "user", "content": ""}]) == "ok"
    with pytest.raises(ChatTemplateError, match="first must be user") as info:
        template.render([{"role": "assistant", "content": ""}])
    assert info.value.http_status == 400


def test_none_valued_keys_are_dropped():
    template = ChatTemplate("{% for m in messages %}{% if m.tool_calls is defined %}T{% else %}-{% endif %}"
                            "{% endfor %}")
    assert template.render([{"role": "assistant", "content": "x", "tool_calls": None}]) == "-"
    assert template.render([{"role": "assistant", "content": "x", "tool_calls": []}]) == "T"


def test_namespace_loopcontrols_and_generation_tag():
    source = ("{% set ns = namespace(n=0) %}{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}"
              "{% set ns.n = ns.n + 1 %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}{{ ns.n }}")
    messages = [{"role": "user", "content": c} for c in "abc"]
    assert ChatTemplate(source).render(messages) == "ab2"


def test_sandbox_blocks_internals():
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{{ messages.__class__.__mro__ }}").render([])
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{% set ns = namespace() %}{% set ns._x = 1 %}").render([])


def test_bad_message_shape():
    with pytest.raises(ChatTemplateError):
        ChatTemplate(CHATML).render(["not a dict"])


def test_template_that_does_not_compile():
    with pytest.raises(InvalidChatTemplateError) as info:
        ChatTemplate("{% for %}")
    assert info.value.http_status == 500


def test_tokenizer_uses_file_template_and_override():
    tok = Tokenizer.from_metadata(tiny_metadata(**{"tokenizer.chat_template": CHATML}))
    assert tok.has_chat_template
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}]) == \
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    custom = Tokenizer.from_metadata(tiny_metadata(), chat_template="{{ bos_token }}{{ messages[0].content }}")
    assert custom.apply_chat_template([{"role": "user", "content": "hi"}]) == "<|endoftext|>hi"


def test_no_template_is_a_typed_error():
    tok = Tokenizer.from_metadata(tiny_metadata())
    assert not tok.has_chat_template
    with pytest.raises(NoChatTemplateError) as info:
        tok.apply_chat_template([{"role": "user", "content": "hi"}])
    assert info.value.code == "chat_template_missing"
