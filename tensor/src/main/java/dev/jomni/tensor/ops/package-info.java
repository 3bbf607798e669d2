/**
 * The coarse differentiable ops, one file each (PyTorch's {@code autograd.Function}, typed): the op's
 * public entry point (shape and dtype checks, then the backend's kernels), a nested {@code Kernels}
 * interface that each backend implements and registers in one line ({@link dev.jomni.tensor.spi.OpKernels}),
 * and a {@code record Saved(...) implements Autograd.Backward} holding exactly what backward needs,
 * so that what the tape keeps alive is visible and countable ({@code Autograd.savedBytes}).
 * {@code Tensor}'s methods delegate here; {@code docs/adding-an-op.md} walks through {@code RmsNorm}.
 */
package dev.jomni.tensor.ops;
