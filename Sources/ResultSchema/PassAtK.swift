/// Unbiased estimators over n ≥ k samples of which c are correct (Chen et al. 2021).
public enum PassAtK {
    /// best@k (pass@k): probability that at least one of k samples drawn without
    /// replacement from the n is correct, 1 − C(n−c, k) / C(n, k).
    public static func best(n: Int, c: Int, k: Int) -> Double {
        precondition(k >= 1 && k <= n && c >= 0 && c <= n, "need 1 <= k <= n and 0 <= c <= n")
        if n - c < k { return 1 }
        if c == 0 { return 0 }
        var prod = 1.0
        for i in (n - c + 1)...n { prod *= 1 - Double(k) / Double(i) }
        return 1 - prod
    }

    /// worst@k: probability that all k samples are correct, C(c, k) / C(n, k).
    public static func worst(n: Int, c: Int, k: Int) -> Double {
        precondition(k >= 1 && k <= n && c >= 0 && c <= n, "need 1 <= k <= n and 0 <= c <= n")
        if c < k { return 0 }
        var prod = 1.0
        for i in 0..<k { prod *= Double(c - i) / Double(n - i) }
        return prod
    }

    /// avg@k: expected mean reward of k samples, c / n (unbiased for any k ≤ n).
    public static func average(n: Int, c: Int) -> Double { Double(c) / Double(n) }

    /// Delete-one jackknife variance, over a problem's n ≥ 2 samples, of an estimator
    /// `f(n, c)` of that problem's metric: dropping a success gives f(n−1, c−1), dropping a
    /// failure f(n−1, c). For avg@k it is ĉ(1 − ĉ)/(n − 1) with ĉ = c/n, the unbiased
    /// variance of c/n. `f` must accept n − 1 samples (n − 1 ≥ k).
    public static func jackknifeVariance(n: Int, c: Int, _ f: (_ n: Int, _ c: Int) -> Double) -> Double {
        guard n >= 2 else { return .nan }
        let dropSuccess = c > 0 ? f(n - 1, c - 1) : 0, dropFailure = c < n ? f(n - 1, c) : 0
        let mean = (Double(c) * dropSuccess + Double(n - c) * dropFailure) / Double(n)
        let ss = Double(c) * (dropSuccess - mean) * (dropSuccess - mean)
            + Double(n - c) * (dropFailure - mean) * (dropFailure - mean)
        return Double(n - 1) / Double(n) * ss
    }
}
