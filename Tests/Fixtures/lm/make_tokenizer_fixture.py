"""Fixture for BPETokenizerTests: deterministic strings (seeded) and the ids Hugging Face `tokenizers` gives them.
Usage: ${PYTHON:-python3} Tests/Fixtures/lm/make_tokenizer_fixture.py [TOKENIZER_JSON] [OUT_JSON]
  defaults: /tmp/smol/hf/tokenizer.json (SmolLM2-135M-Instruct, made by gguf_to_hf.py) and
            Tests/Fixtures/lm/tokenizer_smollm2.json
Needs: tokenizers. Output: {"strings": [...], "ids": [[...]], "decodes": [{"ids", "text", "skip_special"}]}.
The encodes use add_special_tokens=False; strings are kept short so the file stays near 2 MB."""
import json, random, sys
from tokenizers import Tokenizer, Regex, pre_tokenizers

src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/smol/hf/tokenizer.json"
out = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/lm/tokenizer_smollm2.json"
tok = Tokenizer.from_file(src)
rng = random.Random(14)

words = ("the of and to in is was for that with as on by at from his her it an were which are this be not "
         "capital France Paris model federated learning tokenizer don't we'll I'm she's they've you'd it's "
         "THE Hello World naïve café résumé Zürich Ångström coöperate façade São Tomé Kraków Øresund").split()
code = ["def f(x):\n    return x * 2\n", "for i in range(10):\n\tprint(i)", "let x: [Int32] = [1, 2, 3]",
        "func encode(_ text: String) -> [Int32] {", '{"key": "value", "n": 42, "ok": true}', "if (a && b) || !c { }",
        "import Foundation\n\nstruct S {}\n", "x += 1; y -= 2 // comment", "  \"nested\": {\"a\": [1.5e-3, null]}",
        "SELECT * FROM t WHERE id = 7;", "#include <stdio.h>\nint main() { return 0; }", "a_b-c.d/e\\f|g~h`i^j"]
ws = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\t\t", " \t ", "\u00a0", "\u3000", "\u2003", "\n   ", "    "]
cjk = "中文字符测试我们的模型日本語のテキストです한국어텍스트入力漢字"
emoji = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🧑‍💻", "✨", "🤖", "1️⃣"]
odd_digits = ["½", "²", "٣", "४", "³", "¼", "Ⅻ", "①", "٠١٢", "๓", "𝟙"]
specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<file_sep>", "<filename>"]
combining = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "\u0301", "i\u0307"]
# long-established blocks only, so Unicode-version differences between Swift, Rust and Oniguruma cannot show
blocks = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x5ff), (0x600, 0x6ff), (0x900, 0x97f),
          (0xe00, 0xe5b), (0x2000, 0x206f), (0x2100, 0x214f), (0x2190, 0x22ff), (0x3040, 0x30ff), (0x4e00, 0x4fff),
          (0xac00, 0xad00), (0xff00, 0xffef), (0x1f600, 0x1f64f)]

def rand_unicode(n):
    s = []
    while len(s) < n:
        lo, hi = rng.choice(blocks)
        c = chr(rng.randint(lo, hi))
        if c.isprintable() or c in "\t\n ":
            s.append(c)
    return "".join(s)

def prose():
    return " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) + rng.choice(["", ".", "!", "?", ",", "..."])

def number():
    return rng.choice([str(rng.randint(0, 10 ** rng.randint(1, 12))), f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 6)}f}",
                       "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30))), f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/2026",
                       f"v{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}", f"0x{rng.randint(0, 2**32):x}"])

def chat():
    role = rng.choice(["user", "assistant", "system"])
    return f"<|im_start|>{role}\n{prose()}<|im_end|>" + rng.choice(["", "\n", "<|endoftext|>", "\n<|im_start|>assistant\n"])

def mixed():
    parts = [rng.choice([prose, number, lambda: rng.choice(ws), lambda: rng.choice(cjk) * rng.randint(1, 4),
                         lambda: rng.choice(emoji), lambda: rng.choice(odd_digits), lambda: rng.choice(combining),
                         lambda: rng.choice(specials), lambda: rand_unicode(rng.randint(1, 6)), lambda: rng.choice(code)])()
             for _ in range(rng.randint(1, 5))]
    return rng.choice(["", " "]).join(parts)

gens = [(prose, 22), (lambda: rng.choice(code), 6), (number, 10), (lambda: "".join(rng.choice(ws) for _ in range(rng.randint(1, 6)))
         + rng.choice(["", "x", "word", "1"]) + "".join(rng.choice(ws) for _ in range(rng.randint(0, 3))), 8),
        (lambda: " ".join(rng.choice(words[-18:]) for _ in range(3)) + rng.choice(combining), 5),
        (lambda: "".join(rng.choice(cjk) for _ in range(rng.randint(1, 20))), 5),
        (lambda: "".join(rng.choice(emoji + [" "]) for _ in range(rng.randint(1, 6))), 5),
        (lambda: " ".join(rng.choice(odd_digits) for _ in range(rng.randint(1, 4))), 4), (chat, 8),
        (lambda: rand_unicode(rng.randint(1, 30)), 10), (mixed, 17)]
fixed = ["", " ", "The capital of France is", "<|im_start|>user\nHi<|im_end|>", "Hello   world  ", "a\n\n\nb", "x \t\n y",
         "<|im_start|><|im_end|>", "<|im_start", "im_end|>", "12345678901234567890", "don't DON'T", "'s's 're", "  leading",
         "trailing   ", "\n", "\t\t\t", "a" * 300, "ab" * 150 + "!", " " * 50, "<|endoftext|>" * 3]
strings = list(fixed)
population = [g for g, w in gens for _ in range(w)]
while len(strings) < 10500:
    strings.append(rng.choice(population)())
ids = [tok.encode(s, add_special_tokens=False).ids for s in strings]

V = tok.get_vocab_size()
decodes = []
for k in range(300):
    seq = [rng.randrange(V) for _ in range(rng.randint(1, 12))]
    if k % 3 == 0:
        seq.insert(rng.randrange(len(seq) + 1), rng.randrange(17))
    if k % 5 == 0:  # cut a multi-byte character in half, so the U+FFFD replacement is exercised
        seq = tok.encode("é中😀", add_special_tokens=False).ids[1:] + seq
    skip = k % 2 == 0
    decodes.append({"ids": seq, "text": tok.decode(seq, skip_special_tokens=skip), "skip_special": skip})

# the Llama 3 and Qwen2 Split patterns (no model of ours uses them yet): piece end offsets, in code points
patterns = {"llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"}
extra = ["it's IT'S 'Re 'LL x'ſ", "a\r\n\r\n  b", "  \n\t x", "(hello) [world]\n\n", "1234567 89", "\t\tword ,,\n\n"]
splits = {}
for name, pat in patterns.items():
    pre = pre_tokenizers.Split(Regex(pat), "isolated")
    cases = extra + strings[:1500]
    splits[name] = [{"text": s, "ends": [e for _, (b, e) in pre.pre_tokenize_str(s)]} for s in cases]

with open(out, "w", encoding="utf-8") as f:
    json.dump({"source": "SmolLM2-135M-Instruct tokenizer.json via tokenizers " + __import__("tokenizers").__version__,
               "strings": strings, "ids": ids, "decodes": decodes, "splits": splits}, f, ensure_ascii=False, separators=(",", ":"))
print(out, len(strings), "strings", sum(map(len, ids)), "ids", len(decodes), "decodes")
