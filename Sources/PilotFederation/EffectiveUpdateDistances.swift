import PilotCore
import PilotTensor

// MARK: - ATA between clients of different LoRA ranks

extension Aggregate {
    /// One LoRA target of every client: A [in, stored] and B [stored, out] as they were sent or
    /// padded, of which client k's own components are the leading r_k.
    struct TargetFactors {
        var aName: String, bName: String
        var inF: Int, outF: Int
    }

    /// The targets of a LoRA layout: each `…lora_a` with its `…lora_b`, in the order of the A factors.
    static func loraTargets(_ t: NamedTensors) throws -> [TargetFactors] {
        var out: [TargetFactors] = []
        for (name, shape) in zip(t.names, t.shapes) where HetLoRA.factor(name) == .a {
            let bName = String(name.dropLast("lora_a".count)) + "lora_b"
            guard let b = t.shape(of: bName), shape.count == 2, b.count == 2 else {
                throw PilotError.invalidArgument("LoRA factor '\(name)' has no matching '\(bName)' of two dimensions")
            }
            out.append(TargetFactors(aName: name, bName: bName, inF: shape[0], outF: b[1]))
        }
        return out
    }

    /// Pairwise distances between the clients' effective updates, summed over every LoRA target:
    /// d(i, j)² = Σ_t ‖ΔW_i − ΔW_j‖²_F with ΔW_k = s_k·A_k·B_k (s_k = α_k/r_k, A_k [in, r_k], B_k [r_k, out]),
    /// from the small Gram matrices of the factors, never forming a ΔW of in × out:
    ///
    ///     ‖ΔW_i − ΔW_j‖² = ‖ΔW_i‖² + ‖ΔW_j‖² − 2⟨ΔW_i, ΔW_j⟩,
    ///     ⟨ΔW_i, ΔW_j⟩_F = s_i s_j · tr((A_iᵀA_j)(B_jB_iᵀ)) = s_i s_j · Σ_ab (A_iᵀA_j)_ab (B_iB_jᵀ)_ab.
    ///
    /// `loras` are the clients' LoRA tensors in one layout (padded to a common rank, or unpadded at one
    /// rank); client k's own components are the leading `ranks[k]`. Each of the K(K+1)/2 pairs costs
    /// O(r_i·r_j·(in + out)) per target; everything is in Double, in a fixed order, so a duplicated
    /// client is at distance exactly 0. Returns the K×K matrix row-major, as `pairwiseDistances`.
    public static func effectiveUpdateDistances(_ loras: [NamedTensors], ranks: [Int], scales: [Double]) throws -> [Double] {
        let k = loras.count
        guard ranks.count == k, scales.count == k else {
            throw PilotError.invalidArgument("effectiveUpdateDistances: \(k) clients but \(ranks.count) ranks and \(scales.count) scales")
        }
        guard let first = loras.first else { return [] }
        for (c, t) in loras.enumerated() where t.names != first.names {
            throw PilotError.invalidArgument("effectiveUpdateDistances: client \(c)'s LoRA tensors are not named as client 0's")
        }
        var inner = [Double](repeating: 0, count: k * k)
        for target in try loraTargets(first) {
            // every client's own components of this target, in Double: A [in, r_k], B [r_k, out]
            var a: [[Double]] = [], b: [[Double]] = []
            for (c, t) in loras.enumerated() {
                let (sa, sb) = (t.shape(of: target.aName)!, t.shape(of: target.bName)!)
                let stored = sa[1], r = ranks[c]
                guard sa[0] == target.inF, sb == [stored, target.outF], r >= 1, r <= stored else {
                    throw PilotError.invalidArgument("effectiveUpdateDistances: client \(c)'s '\(target.aName)' \(sa) and '\(target.bName)' \(sb) do not hold rank \(r) of [\(target.inF), r] × [r, \(target.outF)]")
                }
                let av = t[target.aName]!, bv = t[target.bName]!
                var ad = [Double](repeating: 0, count: target.inF * r)
                for p in 0..<target.inF { for q in 0..<r { ad[p * r + q] = Double(av[av.startIndex + p * stored + q]) } }
                a.append(ad)
                b.append(bv.prefix(r * target.outF).map(Double.init))
            }
            for i in 0..<k {
                for j in i..<k {
                    let g = factorInner(a: a[i], b: b[i], ri: ranks[i], a2: a[j], b2: b[j], rj: ranks[j], inF: target.inF, outF: target.outF)
                    inner[i * k + j] += scales[i] * scales[j] * g
                }
            }
        }
        var d = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in (i + 1)..<max(i + 1, k) where j < k {
                let d2 = inner[i * k + i] + inner[j * k + j] - 2 * inner[i * k + j]
                let dist = max(d2, 0).squareRoot()
                d[i * k + j] = dist
                d[j * k + i] = dist
            }
        }
        return d
    }

    /// ⟨A_i·B_i, A_j·B_j⟩_F = Σ_ab (A_iᵀA_j)_ab · (B_iB_jᵀ)_ab, with the two r_i × r_j Gram matrices
    /// accumulated in Double (A row-major [in, r], B row-major [r, out]).
    static func factorInner(a ai: [Double], b bi: [Double], ri: Int, a2 aj: [Double], b2 bj: [Double], rj: Int, inF: Int, outF: Int) -> Double {
        var ga = [Double](repeating: 0, count: ri * rj)
        for p in 0..<inF {
            for x in 0..<ri {
                let v = ai[p * ri + x]
                for y in 0..<rj { ga[x * rj + y] += v * aj[p * rj + y] }
            }
        }
        var total = 0.0
        for x in 0..<ri {
            for y in 0..<rj {
                var gb = 0.0
                for q in 0..<outF { gb += bi[x * outF + q] * bj[y * outF + q] }
                total += ga[x * rj + y] * gb
            }
        }
        return total
    }
}
