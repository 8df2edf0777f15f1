/// rlscale's own version, recorded in every grid's manifest (`harness`, and inside
/// `harnessVersion` beside the numerics and schema versions) and printed by
/// `rlscale --version`. Unlike `Numerics.version` it does not enter any identity: bump it
/// with a release, whether or not results change.
public enum Harness {
    public static let version = "0.1.0"
}
