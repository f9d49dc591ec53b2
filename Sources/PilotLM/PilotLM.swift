// PilotLM: pretrained language models.
//   Formats/    safetensors and GGUF readers (memory-mapped, bounds-checked), dequantisation
//   Tokenizer/  byte-level BPE as tokenizer.json defines it, also built from GGUF metadata
//   Llama/      the Llama-family architecture as transformers defines it: config, weights, forward, KV cache, sampling
//   Chat/       chat formats (ChatML, Llama-3, plain)
//   Model/      the imported model directory (`pilot model import`) and loading it for every command
