import Evaluation
import Foundation
import PolicyModel
import ResultSchema
import RLCommon
import Tasks

/// What a fixed training pool is drawn from: the families (by mixture weight) and their
/// difficulty ranges, the base pass bucket its problems must fall in, its size D, and the
/// number of base samples K that measure each candidate's pass rate.
public struct PoolRequest: Codable, Hashable, Sendable {
    /// Training difficulties per family (the cell's training range).
    public struct Range: Codable, Hashable, Sendable {
        public var family: String
        public var low: Int, high: Int
        public init(family: String, low: Int, high: Int) {
            self.family = family; self.low = low; self.high = high
        }
    }

    public var mixture: TaskMixture
    /// Sorted by family name.
    public var ranges: [Range]
    /// The base pass bucket every pool problem must fall in; nil keeps every candidate
    /// (no base sampling at all).
    public var bucket: PassBucket?
    /// D: distinct problems in the pool.
    public var size: Int
    /// K: base samples per candidate that decide its bucket (the base evaluation's K, so
    /// that the held-out `train_dist` group uses the same bucket boundaries).
    public var samples: Int
    /// Draws candidates; fixed per request, independent of any cell's seed, so that every
    /// cell asking for the same pool trains on the same problems.
    public var seed: UInt64

    public init(mixture: TaskMixture, ranges: [String: ClosedRange<Int>], bucket: PassBucket?, size: Int, samples: Int, seed: UInt64 = 4242) {
        self.mixture = mixture
        self.ranges = ranges.keys.sorted().compactMap { f in ranges[f].map { Range(family: f, low: $0.lowerBound, high: $0.upperBound) } }
        self.bucket = bucket
        self.size = size
        self.samples = samples
        self.seed = seed
    }

    /// Hex identity of the request (names the cached pool file).
    public var key: String {
        StableHash.hex("pool-v1:", json: self)
    }

    /// Most candidates drawn before giving up: 64 per pool problem.
    public var maxCandidates: Int { 64 * max(1, size) }
}

/// A fixed training pool: D distinct problems of the base's *train* stream (so disjoint from
/// every held-out evaluation problem), each in the requested base pass bucket, with the
/// base's measured successes. Building it samples the base (K samples per candidate); that
/// compute is base profiling, recorded here and never charged to a cell's budget.
public struct ProblemPool: Codable, Sendable {
    public var request: PoolRequest
    public var problems: [Problem]
    /// The base's successes out of `request.samples` for each pool problem (empty when the
    /// request has no bucket).
    public var baseSuccesses: [Int]
    /// Distinct candidates drawn and (with a bucket) sampled.
    public var candidates: Int
    /// Forward FLOPs of the base sampling (not charged to any cell).
    public var forwardFLOPs: Double
    public var wallSeconds: Double

    /// A pool of given problems (hand-picked sets, tests): no base sampling, so no base
    /// successes and no build cost.
    public init(request: PoolRequest, problems: [Problem]) {
        self.init(request: request, problems: problems, baseSuccesses: [], candidates: problems.count, forwardFLOPs: 0, wallSeconds: 0)
    }

    init(request: PoolRequest, problems: [Problem], baseSuccesses: [Int], candidates: Int, forwardFLOPs: Double, wallSeconds: Double) {
        self.request = request; self.problems = problems; self.baseSuccesses = baseSuccesses
        self.candidates = candidates; self.forwardFLOPs = forwardFLOPs; self.wallSeconds = wallSeconds
    }

    /// Draws candidates from the train stream and keeps those in the bucket until D are found.
    public static func build(_ request: PoolRequest, base: Transformer) throws(PoolError) -> ProblemPool {
        let t0 = monotonicSeconds()
        guard request.size >= 1 else { throw .invalid("pool_size must be at least 1, got \(request.size)") }
        var rng = SeededRNG(seed: request.seed).derived("pool")
        var seen = Set<String>()
        var kept: [Problem] = [], successes: [Int] = []
        var tried = 0, flops = 0.0
        let chunk = 64
        while kept.count < request.size && tried < request.maxCandidates {
            // Without a bucket every candidate is kept: draw only what is missing.
            let want = request.bucket == nil ? request.size - kept.count : chunk
            var batch: [Problem] = []
            var draws = 0
            while batch.count < want && draws < 50 * chunk && tried + batch.count < request.maxCandidates {
                draws += 1
                let f = request.mixture.draw(&rng)
                guard let r = request.ranges.first(where: { $0.family == f.name }), r.low <= r.high else { continue }
                let p = TaskFamilies.sample(f, difficulty: r.low + rng.below(r.high - r.low + 1), split: .train, rng: &rng)
                if seen.insert(p.text).inserted { batch.append(p) }
            }
            guard !batch.isEmpty else { break }  // the ranges hold no more distinct problems
            tried += batch.count
            guard let bucket = request.bucket else {
                for p in batch where kept.count < request.size { kept.append(p) }
                continue
            }
            let opts = EvalOptions(samples: request.samples, greedy: false)
            let run: (outcomes: [ProblemOutcome], cost: EvalCost)
            do {
                run = try Evaluator.run(base, problems: batch, options: opts, seed: request.seed &+ UInt64(tried))
            } catch {
                throw .model(error)
            }
            flops += run.cost.forwardFLOPs
            for o in run.outcomes where kept.count < request.size
                && PassBucket.of(successes: o.successes, samples: o.samples) == bucket {
                kept.append(batch[o.index])
                successes.append(o.successes)
            }
        }
        guard kept.count == request.size else {
            throw .tooFew(found: kept.count, wanted: request.size, candidates: tried, bucket: request.bucket)
        }
        return ProblemPool(
            request: request, problems: kept, baseSuccesses: successes, candidates: tried, forwardFLOPs: flops,
            wallSeconds: monotonicSeconds() - t0)
    }
}

/// Why a pool could not be built.
public enum PoolError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case tooFew(found: Int, wanted: Int, candidates: Int, bucket: PassBucket?)
    case model(ModelError)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let s): s
        case .tooFew(let found, let wanted, let candidates, let bucket):
            "pool: only \(found) of \(wanted) problems found"
                + (bucket.map { " in base pass bucket '\($0.rawValue)'" } ?? "")
                + " among \(candidates) distinct training problems; lower pool_size, widen the difficulty range or pick another bucket"
        case .model(let e): e.description
        case .io(let p, let r): "\(p): \(r)"
        }
    }
}

extension BaseCache {
    /// Where the pool of `request` on base `spec` is cached.
    public func poolPath(_ spec: BaseSpec, _ request: PoolRequest) -> String {
        "\(directory)/\(spec.name)-\(spec.key)-pool-\(request.key).json"
    }

    /// The cached pool, or builds it from `base` and caches it (atomically). One builder per
    /// pool across processes: concurrent callers wait on a lock and then read the cached pool.
    public func obtainPool(
        _ spec: BaseSpec, _ request: PoolRequest, base: Transformer, log: ((String) -> Void)? = nil
    ) throws(PoolError) -> ProblemPool {
        let path = poolPath(spec, request)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(path: directory, reason: "cannot create directory: \(error.localizedDescription)")
        }
        let lock = FileLock(path: path + ".lock", wait: true)
        defer { _ = lock }
        if FileManager.default.fileExists(atPath: path) {
            do {
                let pool = try JSONDecoder().decode(ProblemPool.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
                guard pool.request == request, pool.problems.count == request.size else {
                    throw PoolError.io(path: path, reason: "cached pool does not match its request; delete it to rebuild")
                }
                return pool
            } catch let e as PoolError {
                throw e
            } catch {
                throw .io(path: path, reason: "unreadable pool: \(error)")
            }
        }
        log?("building a training pool for base \(spec.name): \(request.size) problems"
             + (request.bucket.map { " in bucket \($0.rawValue) (\(request.samples) base samples each)" } ?? ""))
        let pool = try ProblemPool.build(request, base: base)
        do { try Self.writeJSON(pool, to: path) } catch { throw .io(path: path, reason: "\(error)") }
        return pool
    }
}
