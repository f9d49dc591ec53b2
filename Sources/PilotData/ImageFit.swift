import PilotCore

/// How an image of any shape becomes the model's square input (LLaVA's `image_aspect_ratio` options).
public enum ImageMode: String, CaseIterable, Sendable {
    /// Pad to a square with `ImageFit.llavaMean` (the image centred, as LLaVA-1.5's `expand2square`),
    /// then resize. LLaVA-1.5's default: nothing of the image is lost and nothing is distorted.
    case pad
    /// The centred square of side min(W, H), then resize (what CLIP's processor does: shortest side, centre crop).
    case crop
    /// Resize W×H to S×S directly (the aspect ratio is not kept).
    case stretch

    public static func parse(_ s: String) throws -> ImageMode {
        guard let m = ImageMode(rawValue: s.lowercased()) else {
            throw PilotError.invalidArgument("unknown image mode '\(s)'; expected pad (LLaVA-1.5's default), crop or stretch")
        }
        return m
    }
}

/// Resizing with a documented filter, separable, in Double:
/// - along an axis that shrinks: box filter / area averaging (each output pixel is the coverage-weighted
///   mean of the source pixels under it, as Pillow's `Image.BOX` and OpenCV's `INTER_AREA`);
/// - along an axis that grows: bilinear (triangle) with pixel centres at +0.5, edges clamped;
/// - rounding half up to 8 bits.
/// Pad and crop never build the padded or cropped image: the resampler reads a window of the source
/// whose pixels outside the image have the pad colour, so a 4000×3000 photo costs no extra buffer.
public enum ImageFit {
    /// LLaVA-1.5's pad colour: `tuple(int(x*255) for x in image_processor.image_mean)` with CLIP's mean
    /// (0.48145466, 0.4578275, 0.40821073). Text-only records get a whole image of it (LLaVA feeds
    /// zeros after normalisation, which is this colour).
    public static let llavaMean = RGB(122, 116, 104)

    public static func fit(_ image: RGBImage, size: Int, mode: ImageMode, padColor: RGB = llavaMean) -> RGBImage {
        let W = image.width, H = image.height
        switch mode {
        case .stretch:
            return resample(image, x0: 0, y0: 0, w: W, h: H, outW: size, outH: size, fill: padColor)
        case .crop:
            let side = min(W, H)
            return resample(image, x0: (W - side) / 2, y0: (H - side) / 2, w: side, h: side, outW: size, outH: size, fill: padColor)
        case .pad:
            let side = max(W, H)
            // expand2square pastes at ((side − W) // 2, (side − H) // 2).
            return resample(image, x0: -((side - W) / 2), y0: -((side - H) / 2), w: side, h: side, outW: size, outH: size, fill: padColor)
        }
    }

    /// One output pixel's taps along an axis: source indices (−1: outside the image, the fill colour) and weights summing to 1.
    struct Taps { var index: [Int]; var weight: [Double]; var start: [Int] }

    /// Taps for a window [r0, r0 + L) of a source axis of length n, resampled to `out` pixels.
    static func taps(n: Int, r0: Int, L: Int, out: Int) -> Taps {
        var t = Taps(index: [], weight: [], start: [0])
        let s = Double(L) / Double(out)
        func src(_ p: Int) -> Int { (p >= 0 && p < n) ? p : -1 }
        for o in 0..<out {
            var idx: [Int] = [], w: [Double] = []
            if s >= 1 {
                let a = Double(o) * s, b = a + s
                var p = Int(a.rounded(.down))
                while Double(p) < b && p < L {
                    let cover = min(Double(p + 1), b) - max(Double(p), a)
                    if cover > 0 { idx.append(src(r0 + p)); w.append(cover) }
                    p += 1
                }
            } else {
                let c = max(0, min(Double(L - 1), (Double(o) + 0.5) * s - 0.5))
                let p0 = Int(c.rounded(.down)), p1 = min(p0 + 1, L - 1), f = c - Double(p0)
                idx = [src(r0 + p0), src(r0 + p1)]; w = [1 - f, f]
            }
            let total = w.reduce(0, +)
            t.index += idx; t.weight += w.map { $0 / total }
            t.start.append(t.index.count)
        }
        return t
    }

    /// Resamples the window (x0, y0, w, h) of `image` (it may extend past the image: those pixels are `fill`) to outW × outH.
    static func resample(_ image: RGBImage, x0: Int, y0: Int, w: Int, h: Int, outW: Int, outH: Int, fill: RGB) -> RGBImage {
        if x0 == 0, y0 == 0, w == image.width, h == image.height, outW == w, outH == h { return image }
        let W = image.width
        let tx = taps(n: image.width, r0: x0, L: w, out: outW)
        let ty = taps(n: image.height, r0: y0, L: h, out: outH)
        let fillD = [Double(fill.r), Double(fill.g), Double(fill.b)]
        // Horizontal pass, only for the source rows some output row reads.
        var rowOf = [Int: Int]()
        var rows: [[Double]] = []
        let fillRow = (0..<outW).flatMap { _ in fillD }
        image.pixels.withUnsafeBufferPointer { px in
            for y in ty.index where rowOf[y] == nil {
                rowOf[y] = rows.count
                guard y >= 0 else { rows.append(fillRow); continue }
                var r = [Double](repeating: 0, count: outW * 3)
                let base = y * W * 3
                for o in 0..<outW {
                    var acc0 = 0.0, acc1 = 0.0, acc2 = 0.0
                    for k in tx.start[o]..<tx.start[o + 1] {
                        let wt = tx.weight[k], x = tx.index[k]
                        if x < 0 { acc0 += wt * fillD[0]; acc1 += wt * fillD[1]; acc2 += wt * fillD[2] }
                        else { let q = base + 3 * x; acc0 += wt * Double(px[q]); acc1 += wt * Double(px[q + 1]); acc2 += wt * Double(px[q + 2]) }
                    }
                    r[3 * o] = acc0; r[3 * o + 1] = acc1; r[3 * o + 2] = acc2
                }
                rows.append(r)
            }
        }
        var out = [UInt8](repeating: 0, count: outW * outH * 3)
        for oy in 0..<outH {
            for ox in 0..<outW {
                for c in 0..<3 {
                    var acc = 0.0
                    for k in ty.start[oy]..<ty.start[oy + 1] { acc += ty.weight[k] * rows[rowOf[ty.index[k]]!][3 * ox + c] }
                    out[3 * (oy * outW + ox) + c] = clamp8(acc)
                }
            }
        }
        return try! RGBImage(width: outW, height: outH, pixels: out)
    }
}
