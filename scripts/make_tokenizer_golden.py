"""Regenerates tests/fixtures/tokenizer_<architecture>.json: transformers' tokenizer, loaded from the same
GGUF (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), as the reference for
`fastcoder.tokenizer`. Needs the `reference` extra; the tests that read the fixture do not.

The corpus (fixed seed) holds Python standard-library excerpts of varied sizes, unicode (CJK,
emoji, accents both composed and decomposed, right-to-left scripts), whitespace runs, and text
with special tokens. Each entry records the text and transformers' ids; special-token entries
also record `decode(ids, skip_special_tokens=True)`. Chat renderings and FIM prompts are
recorded too (when the model has a template / FIM tokens), plus a fingerprint of the vocabulary so a test against another file fails
clearly."""
from __future__ import annotations

import argparse
import json
import random
import sys
import sysconfig
import tempfile
from pathlib import Path

SEED = 20260101
NUM_STDLIB = 230
MAX_CHARS = 2000
NUM_FIRST_CONTROL, NUM_SAMPLED = 8, 4
CONTROL, USER_DEFINED = 3, 4          # tokenizer.ggml.token_type values

UNICODE_TEXTS = [
    "你好，世界！这是一个测试。", "def 计算(数值):\n    return 数值 * 2  # 中文注释", "日本語のテキスト、カタカナとひらがな。",
    "한국어 문장입니다. 프로그래밍은 재미있어요.", "Привет, мир! Ёлка и щука.", "Ελληνικά: αβγδε ΑΒΓΔΕ",
    "مرحبا بالعالم، هذا نص عربي.", "שלום עולם, זה טקסט בעברית.", "mixed: abc مرحبا def שלום 123",
    "हिन्दी में लिखा गया वाक्य।", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "Tiếng Việt có dấu: Nguyễn, Đà Nẵng",
    "café naïve résumé façade coöperate Ångström", "cafe\u0301 nai\u0308ve re\u0301sume\u0301 (decomposed accents)",
    "😀😃😄😁😆😅🤣😂🙂", "family: 👨\u200d👩\u200d👧\u200d👦 and flags 🇫🇷🇯🇵🇺🇸", "skin tones: 👍🏻👍🏼👍🏽👍🏾👍🏿",
    "🎉 party 🎉🎉 again", "emoji in code: print('🐍 python 🚀')", "keycaps 1️⃣2️⃣3️⃣ and ❤️ vs ❤",
    "math: ∀x∈ℝ, ∃y: x² + y² ≤ 1 ∧ ∫₀¹ f(x)dx ≠ ∞", "arrows → ← ↑ ↓ ⇒ ⇔ and boxes ┌─┐│└┘",
    "ｆｕｌｌｗｉｄｔｈ　ＡＳＣＩＩ　１２３", "zero\u200bwidth\u200cjoiner\u200dtext\ufeffBOM",
    "Ünïcödé ïn ïdéntïfïérs: ñandú = 1", "the long s: it'ſ and I'ſ, Kelvin \u212a", "ligatures: ﬁ ﬂ ﬀ ﬃ",
    "combining: a\u0300\u0301\u0302\u0303\u0304 z\u0336\u0336", "控制字符: \x01\x02\x7f end",
    "Ａ𝐁𝒞𝔇𝕰 mathematical alphanumerics", "rare CJK 𠀀𠀁𪚥 (supplementary plane)",
    "x = \"naïve\"  # 字符串 with émoji 😀 and עברית", "สวัสดี 🙏 नमस्ते 🙏 你好 🙏",
    "Ethiopic: ሰላም ለዓለም", "Armenian: Բարեւ աշխարհ", "Georgian: გამარჯობა", "Tamil: வணக்கம் உலகம்",
    "¿Qué tal? ¡Muy bien! «guillemets» „Anführungszeichen“ ‘single’ “double”",
]

WHITESPACE_TEXTS = [
    "\t\tindented with tabs\n\t\t\tmore tabs", " " * 37 + "x", "a" + " " * 100 + "b", "\n" * 12,
    "line1\r\nline2\r\nline3\r\n", "\r\n\r\n\r\n", "trailing spaces   \nnext   \n   \n", "\r lone cr \r\r",
    "mixed \t \t \t tabs and spaces", "\f form feed \v vertical tab", "nbsp\u00a0\u00a0here ideographic\u3000space",
    "line\u2028separator\u2029paragraph", " leading space", "  two leading", "\n\nstart with newlines",
    "end with spaces    ", "\t", " ", "", "\n", "x\n\n\n\n\ny", "    def f():\n        pass\n\n\n    ",
    "if x:\n\tif y:\n\t\treturn 1\n\telse:\n\t\treturn 2\n", " \n \n \n ", "\t \n\t \n", "a\u0085b next-line char",
]

MISC_TEXTS = [
    "don't won't I'm you're we've they'll he'd it's", "DON'T WON'T I'M YOU'RE WE'VE THEY'LL HE'D IT'S",
    "Don'T wOn't", "1234567890 3.14159 -42 1e-10 0xDEADBEEF 0b1010 1_000_000", "12345678901234567890" * 3,
    "https://example.com/path?query=1&b=2#frag", '{"key": [1, 2, {"nested": null}], "s": "\\u00e9"}',
    "=" * 300, "a" * 1000, "ab" * 400, "!!!???...,,,;;;", "<html><body class=\"x\">&amp;&lt;&gt;</body></html>",
    "SELECT * FROM users WHERE id = 1 AND name LIKE '%o%';", "fn main() { println!(\"{}\", 1 + 2); }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }", "$ ls -la | grep '^d' && echo done",
    "camelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case", "x=1;y=2;z=x+y",
    "<|im_start|" + "not closed", "<|IM_START|> wrong case", "< |im_end| > spaced", "<|unknown_token|>",
    "[PAD151665] looks like a pad token", "<tool_call", "</tool_call >",
]

SPECIAL_TEXTS = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n",
    "<|im_start|>assistant\n", "<|endoftext|>", "text<|endoftext|>more text", "<|endoftext|><|endoftext|>",
    "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n    return c<|fim_middle|>",
    "<|repo_name|>myrepo\n<|file_sep|>a.py\nprint(1)\n<|file_sep|>b.py\n", "<|fim_pad|><|fim_pad|>",
    " <|im_end|> spaces around ", "\n<|im_start|>\n", "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
    "x<|im_end|>y<|im_start|>z", "<|im_start|><|im_end|>", "emoji 🎉<|im_end|>🎉", "<|vision_start|><|image_pad|><|vision_end|>",
    "<|object_ref_start|>obj<|object_ref_end|><|box_start|>(1,2)<|box_end|>",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n", "<bos><eos><pad><unk> <mask>",
]

CONVERSATIONS = [
    {"messages": [{"role": "system", "content": "You are a terse coding assistant."},
                  {"role": "user", "content": "Write a function that reverses a string."}],
     "add_generation_prompt": True},
    {"messages": [{"role": "user", "content": "What does `yield` do in Python? 🤔"}], "add_generation_prompt": True},
    {"messages": [{"role": "system", "content": "Answer in code only."},
                  {"role": "user", "content": "fizzbuzz in python"},
                  {"role": "assistant", "content": "for i in range(1, 16):\n    print('FizzBuzz' if i % 15 == 0 else i)"},
                  {"role": "user", "content": "now in rust, with 中文 comments"}],
     "add_generation_prompt": True},
    {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hi! How can I help?"}],
     "add_generation_prompt": False},
    {"messages": [{"role": "user", "content": "What's the weather in Paris?"}],
     "add_generation_prompt": True,
     "tools": [{"type": "function", "function": {
         "name": "get_weather", "description": "Current weather for a city (°C)",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]},
]

FIM_CASES = [
    ("def fibonacci(n):\n    ", "\n    return fibonacci(n - 1) + fibonacci(n - 2)\n"),
    ("import os\n\ndef list_py(path):\n    return [f for f in os.listdir(path) if ", "]\n"),
    ("", "print('only suffix')\n"),
    ("# only prefix 😀\n", ""),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n", "\n    def norm(self):\n        return 0\n"),
]


def stdlib_excerpts(rng: random.Random, count: int) -> list[str]:
    """Excerpts starting at a line start, lengths log-uniform in [10, MAX_CHARS] characters."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.rglob("*.py") if "site-packages" not in p.parts)
    out = []
    while len(out) < count:
        path = rng.choice(files)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) < 20:
            continue
        length = int(round(10 ** rng.uniform(1, 3.3)))
        start = rng.randrange(len(text))
        start = text.rfind("\n", 0, start) + 1
        excerpt = text[start:start + min(length, MAX_CHARS)]
        if excerpt.strip():
            out.append(excerpt)
    return out


def model_specials(metadata: dict, rng: random.Random) -> list[str]:
    """The file's first control tokens plus a sample of its other control and user-defined ones."""
    tokens, types = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.token_type"]
    control = [t for t, k in zip(tokens, types) if k == CONTROL]
    user_defined = [t for t, k in zip(tokens, types) if k == USER_DEFINED]
    rest = control[NUM_FIRST_CONTROL:]
    return (control[:NUM_FIRST_CONTROL] + rng.sample(rest, min(NUM_SAMPLED, len(rest)))
            + rng.sample(user_defined, min(NUM_SAMPLED, len(user_defined))))


def build_corpus(rng: random.Random, specials: list[str]) -> list[tuple[str, str]]:
    """(category, text) pairs; SPECIAL_TEXTS are Qwen's markers (plain text for other models)."""
    corpus = [("stdlib", t) for t in stdlib_excerpts(rng, NUM_STDLIB)]
    corpus += [("unicode", t) for t in UNICODE_TEXTS]
    corpus += [("whitespace", t) for t in WHITESPACE_TEXTS]
    corpus += [("misc", t) for t in MISC_TEXTS]
    corpus += [("special", t) for t in SPECIAL_TEXTS]
    for i in range(len(specials)):
        a, b = specials[i], specials[(i * 7 + 3) % len(specials)]
        corpus.append(("special", f"{a}text {b}\n{a}{a} x"))
    # Random mixes: code with unicode, whitespace runs and special tokens spliced in.
    pieces = UNICODE_TEXTS + WHITESPACE_TEXTS + specials + [" ", "\n", "\t", "  ", "\r\n"]
    for i in range(40):
        base = list(stdlib_excerpts(rng, 1)[0][:600])
        for _ in range(rng.randint(1, 6)):
            base.insert(rng.randrange(len(base) + 1), rng.choice(pieces))
        category = "special" if any(s in "".join(base) for s in specials) else "mixed"
        corpus.append((category, "".join(base)))
    for _ in range(20):  # pure whitespace soup
        corpus.append(("whitespace", "".join(rng.choice([" ", "\t", "\n", "\r\n", "\r", "  ", "x"])
                                            for _ in range(rng.randint(1, 60)))))
    return corpus


def dump_fixture(fixture: dict) -> str:
    """JSON with one top-level key per line and one list element per line (readable diffs)."""
    lines = []
    for key, value in fixture.items():
        if isinstance(value, list):
            items = ",\n".join(json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in value)
            lines.append(f"{json.dumps(key)}: [\n{items}\n]")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--path", default=None, help="GGUF path (default: the pulled model)")
    parser.add_argument("--out", default=None, help="default: tests/fixtures/tokenizer_<general.architecture>.json")
    args = parser.parse_args()
    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    from fastcoder.loader.metadata import read_metadata
    from fastcoder.tokenizer import GgufVocab

    if args.path:
        gguf_path = Path(args.path)
    else:
        from fastcoder.store.cache import resolve_model_path
        gguf_path = resolve_model_path(args.model)
    metadata = read_metadata(gguf_path)
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / gguf_path.name
        link.symlink_to(gguf_path.resolve())
        ref = AutoTokenizer.from_pretrained(tmp, gguf_file=link.name)

    rng = random.Random(SEED)
    entries = []
    for category, text in build_corpus(rng, model_specials(metadata, random.Random(SEED))):
        ids = ref.encode(text, add_special_tokens=True)
        entry = {"category": category, "text": text, "ids": ids}
        decoded = ref.decode(ref.encode(text, add_special_tokens=False))    # without BOS
        if decoded != text:
            entry["reference_decode"] = decoded
            print(f"note: transformers does not round-trip {text[:40]!r}", file=sys.stderr)
        if category == "special":
            entry["decode_skip_special"] = ref.decode(ids, skip_special_tokens=True)
        entries.append(entry)

    chats = []
    for conv in CONVERSATIONS if metadata.get("tokenizer.chat_template") else []:
        kwargs = {"tools": conv["tools"]} if "tools" in conv else {}
        rendered = ref.apply_chat_template(conv["messages"], tokenize=False,
                                           add_generation_prompt=conv["add_generation_prompt"], **kwargs)
        chats.append({**conv, "rendered": rendered, "ids": ref.encode(rendered, add_special_tokens=False)})

    fim = []
    for prefix, suffix in FIM_CASES if "<|fim_prefix|>" in ref.get_vocab() else []:
        text = f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"
        fim.append({"prefix": prefix, "suffix": suffix, "ids": ref.encode(text, add_special_tokens=True)})

    out_path = Path(args.out or f"tests/fixtures/tokenizer_{metadata['general.architecture']}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    path_arg = f" --path {args.path}" if args.path else ""
    fixture = {
        "command": f"python scripts/make_tokenizer_golden.py --model {args.model}{path_arg}",
        "reference": (f"transformers {transformers.__version__} AutoTokenizer.from_pretrained(dir, gguf_file=...), "
                      f"tokenizers {tokenizers.__version__}, python {sys.version.split()[0]} stdlib, seed {SEED}"),
        "gguf_file": gguf_path.name,
        "vocab_fingerprint": GgufVocab.from_metadata(metadata).fingerprint,
        "num_tokens": len(metadata["tokenizer.ggml.tokens"]),
        "entries": entries, "chats": chats, "fim": fim,
    }
    out_path.write_text(dump_fixture(fixture), encoding="utf-8")
    counts = {}
    for e in entries:
        counts[e["category"]] = counts.get(e["category"], 0) + 1
    print(f"wrote {out_path}: {len(entries)} texts {counts}, {len(chats)} chats, {len(fim)} FIM prompts, "
          f"{out_path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
