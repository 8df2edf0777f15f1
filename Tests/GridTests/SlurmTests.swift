import Foundation
import Testing

/// Needs a running Slurm: `make test` starts a single-node cluster with
/// `.ci/slurm-up.sh` (slurmctld, slurmd and munge from Debian's packages) before the suite.
@Suite(.serialized) struct SlurmTests {
    @Test func aSlurmArrayProducesTheSameCellDocumentsAsALocalRun() throws {
        let dir = CLI.tempDir("slurm")
        let ref = try TinyGridReference.shared.get()
        let gridFile = ref.gridFile, reference = ref.documents
        #expect(reference.count == 6)

        let viaSlurm = dir + "/slurm"
        let status = try CLI.run(
            ["slurm", gridFile, "--results", viaSlurm, "--shards", "3", "--array-parallelism", "2", "--time", "20:00", "--wait"],
            log: dir + "/slurm.log")
        let log = (try? String(contentsOfFile: dir + "/slurm.log", encoding: .utf8)) ?? ""
        #expect(status == 0, "rlscale slurm failed: \(log)")
        #expect(log.contains("submitted base job"))
        // Each of the 3 array tasks ran its shard and logged it.
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: viaSlurm + "/tiny/slurm/logs")) ?? []
        #expect(logs.filter { $0.hasPrefix("cells_") }.count == 3, "\(logs)")
        #expect(logs.filter { $0.hasPrefix("bases_") }.count == 1, "\(logs)")
        let fromSlurm = try CLI.cellDocuments(viaSlurm + "/tiny/cells")
        #expect(fromSlurm.keys.sorted() == reference.keys.sorted())
        for (k, v) in reference { #expect(fromSlurm[k] == v, "cell \(k) differs between Slurm and local runs") }
    }
}
