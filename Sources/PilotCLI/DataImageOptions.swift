import ArgumentParser
import PilotData

/// How `pilot data import` and `pilot data scenario` turn image files into the model's input.
struct DataImageOptions: ParsableArguments {
    @Option(name: .customLong("image-size"), help: "Side the images are resized to (the model's input size).")
    var imageSize: Int = 32

    @Option(name: .customLong("image-mode"),
            help: "How a non-square image becomes square: pad (LLaVA-1.5's default: pad to a square with the mean colour 122,116,104, then resize), crop (the centred square) or stretch. Resizing averages areas when shrinking and is bilinear when enlarging.")
    var imageMode: String = "pad"

    @Option(name: .customLong("max-image-pixels"),
            help: "Refuse an image whose header declares more pixels (decompression bombs), before decoding it. Pillow's limit by default.")
    var maxImagePixels: Int = ImageDecodeOptions.defaultMaxPixels

    @Option(name: .customLong("alpha-background"), help: "R,G,B colour that transparent pixels are composited on.")
    var alphaBackground: String = "0,0,0"

    func validate() throws {
        guard (16...512).contains(imageSize) else { throw ValidationError("--image-size must be within 16…512") }
        guard ImageMode(rawValue: imageMode) != nil else { throw ValidationError("--image-mode must be pad, crop or stretch, not '\(imageMode)'") }
        guard maxImagePixels >= 1 else { throw ValidationError("--max-image-pixels must be at least 1") }
        _ = try background()
    }

    func background() throws -> RGB {
        let parts = alphaBackground.split(separator: ",").compactMap { UInt8($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3 else { throw ValidationError("--alpha-background must be R,G,B with values 0…255, e.g. 255,255,255 for white") }
        return RGB(parts[0], parts[1], parts[2])
    }

    func importOptions(tokenizer: Tokenizer? = nil) throws -> LLaVAJSON.ImportOptions {
        LLaVAJSON.ImportOptions(imageSize: imageSize, imageMode: try ImageMode.parse(imageMode),
                                decode: ImageDecodeOptions(maxPixels: maxImagePixels, background: try background()),
                                tokenizer: tokenizer)
    }
}
