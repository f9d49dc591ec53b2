import Foundation

/// Softmax of `row[0..<valid]` in place, shifted by its maximum, with libm's `expf`, summed in index
/// order; `row[valid..<count]` is set to 0 (masked keys). The plain attention rows of the CLIP tower
/// and of the decoder's prompt chunks.
@inline(__always)
public func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, valid: Int, count: Int) {
    var mx = -Float.infinity
    for j in 0..<valid where row[j] > mx { mx = row[j] }
    var sum: Float = 0
    for j in 0..<valid { let e = expf(row[j] - mx); row[j] = e; sum += e }
    let inv = 1 / sum
    for j in 0..<valid { row[j] *= inv }
    for j in valid..<count { row[j] = 0 }
}
