import KernelInterface

// The kernel interface's types, under PolicyModel's name for its clients (they import
// PolicyModel only).
public typealias NormKind = KernelInterface.NormKind
public typealias PackedLayout = KernelInterface.PackedLayout
public typealias EngineKernels = KernelInterface.EngineKernels
public typealias AdamStep = KernelInterface.AdamStep
typealias FMut = KernelInterface.FMut
typealias FPtr = KernelInterface.FPtr
