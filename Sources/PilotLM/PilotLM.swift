// PilotLM: the files of pretrained language models (the decoder that runs them is PilotModel's LanguageModel).
//   Formats/    safetensors and GGUF readers (memory-mapped, bounds-checked), dequantisation
//   Tokenizer/  byte-level BPE as tokenizer.json defines it, also built from GGUF metadata
//   Llama/      the Llama-family architecture as transformers defines it: config.json (LlamaConfig) and the one
//               table of Hugging Face tensor names (LlamaWeights)
//   LoRA/       LoRA adapters: PEFT's files, export, merging into the weights
//   CLIP/       the CLIP vision tower (config, weights, frozen forward)
//   Chat/       chat formats (ChatML, Llama-3, plain)
//   Model/      the imported model directory (`pilot model import`) and loading its files for every command
