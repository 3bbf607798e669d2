// empty.cu: a kernel that does nothing, so that timing it measures the cost of a launch alone
//   (the cuLaunchKernel downcall through FFM plus the driver's queueing).
//   No arguments. Launch: grid 1, block 1.
// Launcher: dev.jomni.cuda.EmptyKernel. Benchmark: dev.jomni.bench.EmptyKernelBench.
extern "C" __global__ void empty_kernel() {}
