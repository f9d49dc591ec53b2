"""Encode throughput of PilotLM's BPETokenizer against Hugging Face `tokenizers` (Rust) on one thread, same strings.
Usage: PILOT_SMOLLM2=/tmp/smol/hf ${PYTHON:-python3} scripts/bench/bench_tokenizer.py   (after a release build with tests:
  swift build -c release --build-tests -Xswiftc -enable-testing). Needs: tokenizers.
Both sides encode the 10,500 strings of Tests/Fixtures/lm/tokenizer_smollm2.json once to warm their word caches,
then 5 more times with a loop of single encodes (no encode_batch), then all of them joined as one document
(5 times); the ratios are ours / theirs in seconds (short strings include Python's per-call overhead)."""
import json, os, re, subprocess, sys, time
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer

model = os.environ.get("PILOT_SMOLLM2", "models/smollm2-135m-instruct")
strings = json.load(open("Tests/Fixtures/lm/tokenizer_smollm2.json", encoding="utf-8"))["strings"]
tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
nbytes = sum(len(s.encode()) for s in strings)
for s in strings:
    tok.encode(s, add_special_tokens=False)
rounds = 5
t0 = time.perf_counter()
for _ in range(rounds):
    for s in strings:
        tok.encode(s, add_special_tokens=False)
theirs = time.perf_counter() - t0
print(f"tokenizers encode: {theirs:.3f} s for {rounds} rounds of {len(strings)} strings, {nbytes * rounds / theirs / 1e6:.2f} MB/s")

doc = "\n".join(strings)
tok.encode(doc, add_special_tokens=False)
t0 = time.perf_counter()
for _ in range(rounds):
    tok.encode(doc, add_special_tokens=False)
theirs_doc = time.perf_counter() - t0
print(f"tokenizers encode: {theirs_doc:.3f} s for {rounds} rounds of one {len(doc.encode())}-byte document, {len(doc.encode()) * rounds / theirs_doc / 1e6:.2f} MB/s")

env = dict(os.environ, PILOT_BENCH_TOKENIZER="1", PILOT_SMOLLM2=model)
run = subprocess.run(["swift", "test", "-c", "release", "-Xswiftc", "-enable-testing", "--skip-build",
                      "--filter", "PilotLMTests.BPETokenizerTests/throughput"], env=env, capture_output=True, text=True)
m = re.search(r"BENCH pilot encode: ([0-9.]+) s.*", run.stdout + run.stderr)
if not m:
    sys.exit("no BENCH line from swift test:\n" + (run.stdout + run.stderr)[-3000:])
d = re.search(r"BENCHDOC pilot encode: ([0-9.]+) s.*", run.stdout + run.stderr)
print(m.group(0).replace("BENCH ", ""))
print(d.group(0).replace("BENCHDOC ", ""))
print("\n".join(re.findall(r"BENCHLONG (.*)", run.stdout + run.stderr)))
print(f"ratio pilot / tokenizers (time), short strings: {float(m.group(1)) / theirs:.2f}, one document: {float(d.group(1)) / theirs_doc:.2f}")
